"""Reads about customers: their state as the resolver's input, and their resolved answers.

The mapping from rows to the resolver's frozen dataclasses is written once, here, for a batch
of customers; one customer (a check, an admin page) is the batch of one, and the dashboard's
refresh (`reporting.resolving`) reads id ranges of thousands through the same functions.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from catalog.selectors import CatalogSpecs, load_catalog_specs
from segments.matching import SegmentSpec
from segments.models import SegmentMember
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon, TopUp
from subscriptions.resolution import (
    AddonSpec,
    CustomerState,
    OverrideSpec,
    Resolution,
    SubscriptionSpec,
    TopUpSpec,
    resolve_entitlements,
)

CUSTOMER_FIELDS = ("pk", "external_id", "country", "traits")


def customer_states(
    catalog: CatalogSpecs,
    customers: Sequence[Mapping[str, Any]],
    *,
    with_topups: bool = True,
    **by_customer: Any,
) -> dict[int, CustomerState]:
    """The resolver's input for `customers` (rows with CUSTOMER_FIELDS), keyed by customer id.
    `by_customer` selects their subscriptions by customer id (`customer_id=…`, or an id range):
    four queries whatever the batch's size, three when none has a subscription (the top-ups
    are read when the catalog has a metered feature, unless `with_topups` says there are none).
    Grants come from the catalog specs, not the database."""
    by_subscription = {f"subscription__{key}": value for key, value in by_customer.items()}
    subscriptions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in (
        Subscription.objects.filter(**by_customer)
        .order_by("pk")
        .values(
            "pk", "customer_id", "plan_id", "status", "trial_ends_at", "past_due_since", "current_period_end"
        )
    ):
        subscriptions[row["customer_id"]].append(row)
    addons: dict[int, list[AddonSpec]] = defaultdict(list)
    overrides: dict[int, list[OverrideSpec]] = defaultdict(list)
    if subscriptions:
        for sub_id, item_id, quantity in (
            SubscriptionAddon.objects.filter(**by_subscription)
            .order_by("pk")
            .values_list("subscription_id", "addon_id", "quantity")
        ):
            item = catalog.items[item_id]
            addons[sub_id].append(AddonSpec(key=item.key, quantity=quantity, grants=item.grants))
        for row in (
            Override.objects.filter(**by_subscription)
            .order_by("pk")
            .values("pk", "subscription_id", "feature__key", "effect", "value", "valid_from", "valid_until")
        ):
            overrides[row["subscription_id"]].append(
                OverrideSpec(
                    id=row["pk"],
                    feature_key=row["feature__key"],
                    effect=row["effect"],
                    value=row["value"],
                    valid_from=row["valid_from"],
                    valid_until=row["valid_until"],
                )
            )
    topups: dict[int, list[TopUpSpec]] = defaultdict(list)
    if with_topups and any(feature.kind == "metered" for feature in catalog.features):
        for customer_id, feature_key, period_start, amount in (
            TopUp.objects.filter(**by_customer)
            .order_by("pk")
            .values_list("customer_id", "feature__key", "period_start", "amount")
        ):
            topups[customer_id].append(TopUpSpec(feature_key, period_start, amount))
    return {
        customer["pk"]: CustomerState(
            external_id=customer["external_id"],
            country=str(customer["country"] or ""),
            traits=customer["traits"] or {},
            subscriptions=tuple(
                _subscription_spec(sub, catalog, addons[sub["pk"]], overrides[sub["pk"]])
                for sub in subscriptions.get(customer["pk"], ())
            ),
            topups=tuple(topups.get(customer["pk"], ())),
        )
        for customer in customers
    }


def _subscription_spec(
    sub: Mapping[str, Any], catalog: CatalogSpecs, addons: list[AddonSpec], overrides: list[OverrideSpec]
) -> SubscriptionSpec:
    plan = catalog.items[sub["plan_id"]]
    return SubscriptionSpec(
        id=sub["pk"],
        plan_key=plan.key,
        plan_rank=plan.rank,
        grace_days=plan.grace_days,
        status=sub["status"],
        trial_ends_at=sub["trial_ends_at"],
        past_due_since=sub["past_due_since"],
        plan_grants=plan.grants,
        addons=tuple(addons),
        overrides=tuple(overrides),
        current_period_end=sub["current_period_end"],
    )


def customer_state(customer: Customer, catalog: CatalogSpecs) -> CustomerState:
    """One customer's resolver input (at most four queries; three when the customer row was
    read with `has_topups` false, as `with_topups` annotates it)."""
    row = {name: getattr(customer, name) for name in CUSTOMER_FIELDS}
    topups = getattr(customer, "has_topups", True)
    return customer_states(catalog, [row], with_topups=topups, customer_id=customer.pk)[customer.pk]


def with_topups(customers: QuerySet) -> QuerySet:
    """`customers` with `has_topups`: whether each has any top-up (one subquery instead of a
    query of its own when there is none, as for nearly every customer)."""
    return customers.annotate(has_topups=Exists(TopUp.objects.filter(customer=OuterRef("pk"))))


def listed_segments(
    catalog: CatalogSpecs, external_id: str, listed: Sequence[tuple[int, str]]
) -> dict[str, SegmentSpec]:
    """The catalog's segments with one customer's explicit list entries ((segment id, kind)
    pairs) filled in: a segment's full lists are never loaded to answer for one customer."""
    if not listed:
        return catalog.segments
    segments = dict(catalog.segments)
    for segment_id, kind in listed:
        key = catalog.segment_keys[segment_id]
        field = "included" if kind == SegmentMember.Kind.INCLUDED else "excluded"
        segments[key] = dataclasses.replace(segments[key], **{field: frozenset({external_id})})
    return segments


def customer_segments(customer: Customer, catalog: CatalogSpecs) -> dict[str, SegmentSpec]:
    """One customer's view of the segments (one query)."""
    listed = list(SegmentMember.objects.filter(customer=customer).values_list("segment_id", "kind"))
    return listed_segments(catalog, customer.external_id, listed)


def resolve_customer(
    customer: Customer, *, now: datetime | None = None, catalog: CatalogSpecs | None = None
) -> Resolution:
    """Every active feature's answer for `customer` at `now` (docs/domain.md, resolution)."""
    catalog = catalog or load_catalog_specs()
    return resolve_entitlements(
        catalog.features,
        customer_state(customer, catalog),
        customer_segments(customer, catalog),
        now or timezone.now(),
    )


def coming_overrides(customer: Customer, *, now: datetime | None = None) -> list[Override]:
    """The overrides on the customer's subscriptions that have not started yet, soonest first
    (one query): what support sees coming."""
    now = now or timezone.now()
    return list(
        Override.objects.filter(subscription__customer=customer, valid_from__gt=now)
        .select_related("feature", "subscription")
        .order_by("valid_from", "pk")
    )


def audit_entries_about_customer(queryset: QuerySet, *, external_id: str) -> QuerySet:
    """The audit entries about one customer: the customer itself, its top-ups, its subscriptions,
    their add-ons and overrides. Found through the history tables, so objects deleted since (an override that
    was removed, an add-on taken off) still lead to their entries."""

    def keys(model, **lookup) -> QuerySet:
        rows = model.history.model.objects.filter(**lookup)
        return rows.annotate(key=Cast("id", CharField())).values("key").distinct()

    customer_ids = Customer.history.model.objects.filter(external_id=external_id).values("id")
    subscription_ids = Subscription.history.model.objects.filter(customer_id__in=customer_ids).values("id")
    types = ContentType.objects.get_for_models(Customer, Subscription, SubscriptionAddon, Override, TopUp)
    about = (
        Q(content_type=types[Customer], object_id__in=keys(Customer, external_id=external_id))
        | Q(content_type=types[Subscription], object_id__in=keys(Subscription, customer_id__in=customer_ids))
        | Q(
            content_type=types[SubscriptionAddon],
            object_id__in=keys(SubscriptionAddon, subscription_id__in=subscription_ids),
        )
        | Q(content_type=types[Override], object_id__in=keys(Override, subscription_id__in=subscription_ids))
        | Q(content_type=types[TopUp], object_id__in=keys(TopUp, customer_id__in=customer_ids))
    )
    return queryset.filter(about)
