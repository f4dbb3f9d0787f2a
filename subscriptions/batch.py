"""Batch writes of the scheduled-change sweep for customers, subscriptions and overrides
(`audit.batch`). Each mirrors its API view (`subscriptions.api.views`) and service
(`subscriptions.services`) step by step, on rows the batch loaded in bulk: the same input
serializer, the same no-op rule, the same permission functions in the same order, and the
model's own `full_clean()`, whose checks that would query are answered from those rows:
- foreign keys: the target is one of the rows loaded (a plan also must be a plan);
- unique fields: a changed row keeps its `external_id`; a new customer's was looked up;
- an override's overlap with others: from the overrides of its subscription and feature,
  loaded in one query and kept up to date with those the batch creates;
- an override's check constraints: evaluated in Python.
Anything the view would refuse, or that these shortcuts do not cover, raises `Replay`,
ValidationError or PermissionDenied before anything is recorded, and the replay takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.batch import Batch, BatchWrite, Replay, validated
from catalog.models import Feature, Item
from catalog.permissions import GRANT_FEATURE, checker, has
from subscriptions import permissions
from subscriptions.api.serializers import CustomerIn, OverrideIn, SubscriptionIn
from subscriptions.models import Customer, Override, Subscription
from toolkit.upsert import assign, is_noop, stored_values


class CustomerWrite(BatchWrite):
    """PUT (create or replace) or PATCH `/customers/{external_id}`: CustomerDetailView._write
    and services.customer_save."""

    order = 10

    def __init__(self, external_id: str, values: dict[str, Any], partial: bool) -> None:
        self.external_id, self.values, self.partial = external_id, values, partial

    @classmethod
    def parse(cls, method, kwargs, data):
        partial = method == "PATCH"
        values = validated(CustomerIn, data, partial=partial)
        return None if values is None else cls(kwargs["external_id"], values, partial)

    @classmethod
    def prefetch(cls, writes, batch):
        batch.rows.load(Customer.objects.select_for_update(), "external_id", [w.external_id for w in writes])

    def apply(self, batch: Batch) -> None:
        actor = batch.authors[self.change.created_by_id]
        customer = batch.rows.get(Customer, "external_id", self.external_id)
        if customer is None and self.partial:
            raise Replay("404")
        created = customer is None
        before = None if created else stored_values(customer)
        if created:
            customer = Customer(external_id=self.external_id)
        batch.touch(customer)
        assign(customer, self.values)
        if is_noop(customer, before):
            permissions.require(actor, "change", "customer")
            return
        permissions.require(actor, "add" if created else "change", "customer")
        # external_id is unique: unchanged on a change; a new one was looked up (and not found).
        batch.full_clean(customer)
        if created:
            batch.writes.created(customer)
            batch.rows.put(Customer, "external_id", self.external_id, customer)
        else:
            batch.writes.changed(customer)
        batch.customer_changed(customer)


SUBSCRIPTION_FIELDS = {"plan", "status", "trial_ends_at", "current_period_end", "past_due_since"}


class SubscriptionPatch(BatchWrite):
    """PATCH `/subscriptions/{external_id}` of its plan, status or dates (not its customer or
    add-ons): SubscriptionDetailView._write and services.subscription_save."""

    order = 20

    def __init__(self, external_id: str, values: dict[str, Any]) -> None:
        self.external_id, self.values = external_id, values

    @classmethod
    def parse(cls, method, kwargs, data):
        values = validated(SubscriptionIn, data, partial=True)
        if values is None or not set(values) <= SUBSCRIPTION_FIELDS:
            return None
        return cls(kwargs["external_id"], values)

    @classmethod
    def prefetch(cls, writes, batch):
        _load_subscriptions(batch, [w.external_id for w in writes])
        _load_by_key(batch, Item, [w.values["plan"] for w in writes if "plan" in w.values])

    def apply(self, batch: Batch) -> None:
        actor = batch.authors[self.change.created_by_id]
        subscription = batch.rows.get(Subscription, "external_id", self.external_id)
        if subscription is None:
            raise Replay("404")
        values = dict(self.values)
        if "plan" in values:
            plan = batch.rows.get(Item, "key", values["plan"])
            if plan is None:
                raise Replay("400: unknown plan")
            values["plan"] = plan
        before = stored_values(subscription)
        batch.touch(subscription)
        assign(subscription, values)
        if is_noop(subscription, before):
            permissions.require(actor, "change", "subscription")
            return
        permissions.require(actor, "change", "subscription")
        # Its customer is unchanged (and locked with it); the plan must be a plan, as the
        # foreign key's limit_choices_to says; external_id is unchanged.
        if subscription.plan.kind != Item.Kind.PLAN:
            raise Replay("400: not a plan")
        batch.full_clean(subscription, exclude=["customer", "plan"])
        batch.writes.changed(subscription, known=batch.rows.known())
        batch.customer_changed(subscription.customer_id)


class OverrideCreate(BatchWrite):
    """POST `/subscriptions/{external_id}/overrides`: SubscriptionOverridesView.post and
    services.override_grant / override_revoke → override_save."""

    order = 30

    def __init__(self, external_id: str, data: dict[str, Any]) -> None:
        self.external_id, self.data = external_id, data

    @classmethod
    def parse(cls, method, kwargs, data):
        values = validated(OverrideIn, data)
        return None if values is None else cls(kwargs["external_id"], values)

    @classmethod
    def prefetch(cls, writes, batch):
        subscriptions = _load_subscriptions(batch, [w.external_id for w in writes])
        features = _load_by_key(batch, Feature, [w.data["feature"] for w in writes])
        existing: dict[tuple[int, int], list[Override]] = {}
        rows = Override.objects.filter(
            subscription_id__in=[s.pk for s in subscriptions], feature_id__in=[f.pk for f in features]
        ).only("id", "subscription_id", "feature_id", "valid_from", "valid_until")
        for override in rows:
            existing.setdefault((override.subscription_id, override.feature_id), []).append(override)
        batch.rows.extra["overrides"] = existing
        # The authors' object permissions on these features, two queries per author, as
        # guardian's checker would read them one feature at a time.
        by_author: dict[int, list[Feature]] = {}
        for write in writes:
            feature = batch.rows.get(Feature, "key", write.data["feature"])
            if feature is not None:
                by_author.setdefault(write.change.created_by_id, []).append(feature)
        for author_id, mine in by_author.items():
            author = batch.authors.get(author_id)
            if author is not None and author.is_active and not has(author, GRANT_FEATURE):
                checker(author).prefetch_perms(mine)

    def apply(self, batch: Batch) -> None:
        actor = batch.authors[self.change.created_by_id]
        subscription = batch.rows.get(Subscription, "external_id", self.external_id)
        if subscription is None:
            raise Replay("404")
        feature = batch.rows.get(Feature, "key", self.data["feature"])
        if feature is None:
            raise Replay("400: unknown feature")
        data = self.data
        # override_grant with the body's value, or override_revoke (which takes none).
        revoke = data["effect"] == Override.Effect.REVOKE
        override = Override(
            subscription=subscription,
            feature=feature,
            effect=Override.Effect.REVOKE if revoke else Override.Effect.GRANT,
            value=None if revoke else data["value"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
        )
        permissions.require_override(actor, "add", feature)
        others = batch.rows.extra["overrides"].setdefault((subscription.pk, feature.pk), [])
        # clean() asks the database for overlapping overrides: answer from the rows held.
        override.overlapping = lambda: _Overlapping(override, others)
        try:
            batch.full_clean(override, exclude=["subscription", "feature"])
        finally:
            del override.overlapping
        window_ordered = (
            override.valid_from is None
            or override.valid_until is None
            or override.valid_from < override.valid_until
        )
        if not window_ordered or (override.effect != Override.Effect.GRANT and override.value is not None):
            raise Replay("a check constraint would refuse it")
        batch.writes.created(override)
        others.append(override)
        batch.customer_changed(subscription.customer_id)


class _Overlapping:
    """Override.overlapping(), answered from the overrides held: `.first()` is all clean() asks."""

    def __init__(self, override: Override, others: Sequence[Override]) -> None:
        self.override, self.others = override, others

    def first(self) -> Override | None:
        mine = self.override
        for other in self.others:
            if other is mine or (mine.pk is not None and other.pk == mine.pk):
                continue
            if mine.valid_until is not None and not (
                other.valid_from is None or other.valid_from < mine.valid_until
            ):
                continue
            if mine.valid_from is not None and not (
                other.valid_until is None or other.valid_until > mine.valid_from
            ):
                continue
            return other
        return None


def _load_subscriptions(batch: Batch, external_ids: list[str]) -> list[Subscription]:
    """Subscriptions by external id, locked (as the PATCH view locks them), with their plan
    (which clean() reads)."""
    queryset = Subscription.objects.select_for_update(of=("self",)).select_related("plan")
    batch.rows.load(queryset, "external_id", external_ids)
    found = [batch.rows.get(Subscription, "external_id", e) for e in set(external_ids)]
    for subscription in found:
        if subscription is not None:
            batch.rows.remember(subscription.plan)
    return [s for s in found if s is not None]


def _load_by_key(batch: Batch, model, keys: list[str]) -> list[Any]:
    batch.rows.load(model.objects.all(), "key", keys)
    return [row for row in (batch.rows.get(model, "key", k) for k in set(keys)) if row is not None]
