"""Import and export of customers, subscriptions (with their add-ons) and overrides (see
audit.imports). Rows are written by `subscriptions.services`."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.core.exceptions import ValidationError
from import_export.fields import Field

from audit.imports.cells import lookup, parse_datetime, parse_json, render_datetime, split_list
from audit.imports.resources import ServiceResource
from catalog.models import Feature, Item
from catalog.permissions import GRANT_FEATURE, prefetch_object_permissions
from catalog.resources import value_text
from catalog.values import clean_grant_value
from subscriptions import services
from subscriptions.models import Customer, Override, Subscription


class CustomerResource(ServiceResource):
    """Customers by external id."""

    title = "Customers"
    key_columns = ("external_id",)
    column_help = {
        "external_id": "The applications' id for the account.",
        "country": "ISO 3166 code (DE, US), or empty.",
        "traits": 'Free attributes as a JSON object, e.g. {"industry": "media"}.',
    }

    external_id = Field()
    name = Field()
    country = Field()
    traits = Field()

    class Meta:
        model = Customer

    def prepare(self, rows):
        ids = {row["external_id"] for row in rows}
        self.existing = {
            customer.external_id: customer for customer in Customer.objects.filter(external_id__in=ids)
        }

    def locate(self, cells):
        return self.existing.get(cells["external_id"]) or Customer(external_id=cells["external_id"])

    def assign(self, customer: Customer, cells: dict[str, str]) -> None:
        if "name" in self.present:
            customer.name = cells["name"]
        if "country" in self.present:
            customer.country = cells["country"].upper()
        if "traits" in self.present:
            customer.traits = parse_json(cells["traits"], "traits") if cells["traits"] else {}

    def render(self, customer: Customer) -> dict[str, object]:
        return {
            "external_id": customer.external_id,
            "name": customer.name,
            "country": customer.country.code or "",
            "traits": json.dumps(customer.traits, sort_keys=True) if customer.traits else "",
        }

    def save(self, customer: Customer, changed: set[str]) -> None:
        services.customer_save(customer=customer, **self.who())


def parse_addons(text: str) -> list[tuple[str, int]]:
    """`extra-seats:2, sla` → [("extra-seats", 2), ("sla", 1)]."""
    addons = []
    for part in split_list(text):
        key, _, quantity = part.partition(":")
        quantity = quantity.strip() or "1"
        if not quantity.isdigit() or int(quantity) < 1:
            raise ValidationError(
                {"addons": f"{part!r}: write an add-on as key:quantity, e.g. extra-seats:2."}
            )
        addons.append((key.strip(), int(quantity)))
    keys = [key for key, _ in addons]
    if len(set(keys)) != len(keys):
        raise ValidationError({"addons": "Each add-on may appear only once."})
    return addons


class SubscriptionResource(ServiceResource):
    """Subscriptions by external id, with their add-ons in one cell. A subscription stays
    with its customer; a legacy or archived plan is refused for a new subscription or a plan
    change, as everywhere."""

    title = "Subscriptions (with add-ons)"
    key_columns = ("external_id",)
    column_help = {
        "external_id": "The billing system's id for the subscription.",
        "customer": "The customer's external id.",
        "plan": "The plan's key.",
        "status": "trialing, active, past_due, paused, canceled or expired.",
        "trial_ends_at": "ISO 8601 in UTC, e.g. 2030-06-06T00:00:00Z (trialing needs it).",
        "current_period_end": "ISO 8601 in UTC, or empty.",
        "past_due_since": "ISO 8601 in UTC (past_due needs it).",
        "addons": "All the subscription's add-ons as key:quantity, comma-separated "
        "(extra-seats:2); empty for none.",
    }

    external_id = Field()
    customer = Field()
    plan = Field()
    status = Field()
    trial_ends_at = Field()
    current_period_end = Field()
    past_due_since = Field()
    addons = Field()

    class Meta:
        model = Subscription

    def prepare(self, rows):
        ids = {row["external_id"] for row in rows}
        self.existing = {
            subscription.external_id: subscription
            for subscription in Subscription.objects.filter(external_id__in=ids)
            .select_related("customer", "plan")
            .prefetch_related("addons__addon")
        }
        customers = {row.get("customer", "") for row in rows}
        self.customers = {c.external_id: c for c in Customer.objects.filter(external_id__in=customers)}
        keys = {row.get("plan", "") for row in rows}
        for row in rows:
            with contextlib.suppress(ValidationError):  # such a row is refused when it is read
                keys.update(key for key, _ in parse_addons(row.get("addons", "")))
        self.items = {item.key: item for item in Item.objects.filter(key__in=keys)}

    def locate(self, cells):
        return self.existing.get(cells["external_id"]) or Subscription(external_id=cells["external_id"])

    def assign(self, subscription: Subscription, cells: dict[str, str]) -> None:
        if "customer" in self.present:
            customer = lookup(self.customers, cells["customer"], "customer", "customer")
            if subscription.pk and customer.pk != subscription.customer_id:
                raise ValidationError({"customer": "A subscription stays with its customer."})
            subscription.customer = customer
        if "plan" in self.present:
            subscription.plan = lookup(self.items, cells["plan"], "plan", "plan")
        if "status" in self.present:
            subscription.status = cells["status"]
        for column in ("trial_ends_at", "current_period_end", "past_due_since"):
            if column in self.present:
                setattr(subscription, column, parse_datetime(cells[column], column))
        if "addons" in self.present:
            subscription._import_addons = [
                (lookup(self.items, key, "addons", "add-on"), quantity)
                for key, quantity in parse_addons(cells["addons"])
            ]

    def render(self, subscription: Subscription) -> dict[str, object]:
        if hasattr(subscription, "_import_addons"):
            addons = subscription._import_addons
        else:
            addons = [(a.addon, a.quantity) for a in subscription.addons.all()] if subscription.pk else []
        return {
            "external_id": subscription.external_id,
            "customer": subscription.customer.external_id if subscription.customer_id else "",
            "plan": subscription.plan.key if subscription.plan_id else "",
            "status": subscription.status,
            "trial_ends_at": render_datetime(subscription.trial_ends_at),
            "current_period_end": render_datetime(subscription.current_period_end),
            "past_due_since": render_datetime(subscription.past_due_since),
            "addons": ", ".join(f"{item.key}:{quantity}" for item, quantity in sorted(addons, key=_by_key)),
        }

    def save(self, subscription: Subscription, changed: set[str]) -> None:
        if subscription.pk is None or changed - {"addons"}:
            services.subscription_save(subscription=subscription, **self.who())
        if "addons" in changed:
            services.subscription_set_addons(
                subscription=subscription, addons=subscription._import_addons, **self.who()
            )

    def export_queryset(self, queryset):
        return queryset.select_related("customer", "plan").prefetch_related("addons__addon")


def clean_grant_cell(feature: Feature, text: str) -> object:
    """A grant's value from its cell: fits the feature's kind, not necessarily its levels."""
    try:
        return clean_grant_value(feature, text)
    except ValidationError as error:
        raise ValidationError({"value": error.messages}) from None


def _by_key(pair: tuple[Item, int]) -> str:
    return pair[0].key


class OverrideResource(ServiceResource):
    """Overrides, named by subscription, feature and start (`valid_from`, empty for "from
    the start"): two overrides of one feature on one subscription never overlap, so no two
    share a start. A new start is a new override. Only features the importing user may
    grant can be granted, revoked, changed or removed; other rows are refused."""

    title = "Overrides"
    key_columns = ("subscription", "feature", "valid_from")
    optional_keys = ("valid_from",)
    deletable = True
    column_help = {
        "subscription": "The subscription's external id.",
        "feature": "The feature's key.",
        "valid_from": "When it starts, ISO 8601 in UTC; empty for now on. With subscription and "
        "feature, it names the override.",
        "effect": "grant or revoke.",
        "value": "The granted value: on for a switch, any whole number for a quantity, a level "
        "for a custom; empty for a revoke.",
        "valid_until": "When it ends, ISO 8601 in UTC; empty for until removed.",
        "delete": "true to remove the override (optional column).",
    }

    subscription = Field()
    feature = Field()
    valid_from = Field()
    effect = Field()
    value = Field()
    valid_until = Field()
    delete = Field()

    class Meta:
        model = Override

    def prepare(self, rows):
        ids = {row["subscription"] for row in rows}
        keys = {row["feature"] for row in rows}
        self.subscriptions = {
            s.external_id: s
            for s in Subscription.objects.filter(external_id__in=ids).select_related("customer")
        }
        features = Feature.objects.filter(key__in=keys)
        self.features = {feature.key: feature for feature in features}
        self.existing = {
            (o.subscription_id, o.feature_id, o.valid_from): o
            for o in Override.objects.filter(subscription__external_id__in=ids, feature__key__in=keys)
        }
        prefetch_object_permissions(self.actor, GRANT_FEATURE, features)

    def identity(self, cells):
        return (cells["subscription"], cells["feature"], parse_datetime(cells["valid_from"], "valid_from"))

    def locate(self, cells):
        subscription = lookup(self.subscriptions, cells["subscription"], "subscription", "subscription")
        feature = lookup(self.features, cells["feature"], "feature", "feature")
        valid_from = parse_datetime(cells["valid_from"], "valid_from")
        override = self.existing.get((subscription.pk, feature.pk, valid_from)) or Override(
            valid_from=valid_from
        )
        override.subscription, override.feature = subscription, feature
        return override

    def assign(self, override: Override, cells: dict[str, str]) -> None:
        if "effect" in self.present:
            override.effect = cells["effect"]
        if "valid_until" in self.present:
            override.valid_until = parse_datetime(cells["valid_until"], "valid_until")
        if override.effect == Override.Effect.REVOKE:
            if cells.get("value"):
                raise ValidationError({"value": "A revoke has no value: leave the cell empty."})
            override.value = None
        elif "value" in self.present:
            override.value = clean_grant_cell(override.feature, cells["value"])

    def render(self, override: Override) -> dict[str, Any]:
        return {
            "subscription": override.subscription.external_id,
            "feature": override.feature.key,
            "valid_from": render_datetime(override.valid_from),
            "effect": override.effect,
            "value": value_text(override.value),
            "valid_until": render_datetime(override.valid_until),
        }

    def save(self, override: Override, changed: set[str]) -> None:
        services.override_save(override=override, **self.who())

    def remove(self, override: Override) -> None:
        services.override_delete(override=override, **self.who())

    def export_queryset(self, queryset):
        return queryset.select_related("subscription", "feature")
