"""Writes to customers, subscriptions, add-ons, overrides and top-ups. Each checks permission,
validates, saves in a change context and moves the customer's revision after commit.

The `*_put` services are the API's create-or-replace writes: they read and lock the row by
its external id (`toolkit.upsert`), and a write that changes nothing records nothing and
needs only the permission to change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.writes import atomic, delete_audited, save_audited
from catalog.models import Feature, Item
from subscriptions import permissions
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon, TopUp
from subscriptions.selectors import resolve_customer
from toolkit import revisions
from toolkit.upsert import assign, find, is_noop, locked, put

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@atomic
def customer_save(*, customer: Customer, actor: User | None, reason: str, source: str) -> Customer:
    """Create or change a customer (name, country, traits)."""
    permissions.require(actor, "add" if customer.pk is None else "change", "customer")
    save_audited(customer, actor=actor, reason=reason, source=source)
    revisions.customers_changed([customer.external_id])
    return customer


@atomic
def customer_put(
    *, external_id: str, values: dict[str, Any], partial: bool, actor: User | None, reason: str, source: str
) -> tuple[Customer, bool]:
    """Create the customer `external_id` or set `values` on it (PATCH: `partial`, and it must
    exist). Returns the customer and whether it was created."""
    who = {"actor": actor, "reason": reason, "source": source}
    return put(
        Customer.objects,
        lookup={"external_id": external_id},
        values=values,
        partial=partial,
        missing=f"No customer {external_id}.",
        save=lambda customer: customer_save(customer=customer, **who),
        unchanged=lambda customer: permissions.require(actor, "change", "customer"),
    )


@atomic
def subscription_put(
    *,
    external_id: str,
    values: dict[str, Any],
    addons: Sequence[tuple[Item, int]] | None,
    partial: bool,
    actor: User | None,
    reason: str,
    source: str,
) -> tuple[Subscription, bool]:
    """Create the subscription `external_id` or set `values` on it (`customer` by external
    id, `plan` by key, status and dates) and, when given, its add-ons. A subscription stays
    with its customer. Returns it and whether it was created."""
    subscription, before = locked(
        Subscription.objects.select_related("customer", "plan"),
        partial=partial,
        missing=f"No subscription {external_id}.",
        external_id=external_id,
    )
    created = subscription is None
    values = dict(values)
    if "customer" in values:
        customer = find(Customer.objects, external_id=values["customer"])
        if customer is None:
            raise ValidationError({"customer": f"Unknown customer {values['customer']}."})
        if not created and customer.pk != subscription.customer_id:
            raise ValidationError({"customer": "A subscription stays with its customer."})
        values["customer"] = customer
    if "plan" in values:
        plan = find(Item.objects, key=values["plan"])
        if plan is None:
            raise ValidationError({"plan": f"Unknown plan {values['plan']}."})
        values["plan"] = plan
    subscription = subscription or Subscription(external_id=external_id)
    assign(subscription, values)
    wrote = False
    if not is_noop(subscription, before):
        subscription_save(subscription=subscription, actor=actor, reason=reason, source=source)
        wrote = True
    if addons is not None:
        current = {} if created else {a.addon_id: a.quantity for a in subscription.addons.all()}
        if current != {item.pk: quantity for item, quantity in addons}:
            subscription_set_addons(
                subscription=subscription, addons=addons, actor=actor, reason=reason, source=source
            )
            wrote = True
    if not wrote:
        permissions.require(actor, "change", "subscription")
    return subscription, created


@atomic
def subscription_save(
    *, subscription: Subscription, actor: User | None, reason: str, source: str
) -> Subscription:
    """Create a subscription or change its plan, status or dates. A legacy or archived plan
    is refused for a new subscription or a plan change (the model's clean says so)."""
    permissions.require(actor, "add" if subscription.pk is None else "change", "subscription")
    save_audited(subscription, actor=actor, reason=reason, source=source)
    revisions.customers_changed([subscription.customer.external_id])
    return subscription


@atomic
def subscription_addon_save(
    *, addon: SubscriptionAddon, actor: User | None, reason: str, source: str
) -> SubscriptionAddon:
    """Add an add-on to a subscription or change its quantity."""
    permissions.require(actor, "change", "subscription")
    save_audited(addon, actor=actor, reason=reason, source=source)
    revisions.customers_changed([addon.subscription.customer.external_id])
    return addon


@atomic
def subscription_addon_delete(
    *, addon: SubscriptionAddon, actor: User | None, reason: str, source: str
) -> None:
    permissions.require(actor, "change", "subscription")
    delete_audited(addon, actor=actor, reason=reason, source=source)
    revisions.customers_changed([addon.subscription.customer.external_id])


@atomic
def subscription_set_addons(
    *,
    subscription: Subscription,
    addons: Sequence[tuple[Item, int]],
    actor: User | None,
    reason: str,
    source: str,
) -> Subscription:
    """Make the subscription's add-ons exactly `addons` ((item, quantity) pairs); unchanged
    ones record nothing."""
    keys = [item.pk for item, _ in addons]
    if len(set(keys)) != len(keys):
        raise ValidationError({"addons": "Each add-on may appear only once."})
    existing = (
        {}
        if subscription.pk is None
        else {a.addon_id: a for a in subscription.addons.select_related("addon")}
    )
    for addon_id, addon in existing.items():
        if addon_id not in keys:
            subscription_addon_delete(addon=addon, actor=actor, reason=reason, source=source)
    for item, quantity in addons:
        addon = existing.get(item.pk) or SubscriptionAddon(subscription=subscription, addon=item)
        if addon.pk is None or addon.quantity != quantity:
            addon.quantity = quantity
            subscription_addon_save(addon=addon, actor=actor, reason=reason, source=source)
    return subscription


@atomic
def override_save(*, override: Override, actor: User | None, reason: str, source: str) -> Override:
    """Create or change an override; the actor must be allowed to grant its feature (before
    and, if the feature changed, after)."""
    if override.pk is not None:
        original = Override.objects.select_related("feature").get(pk=override.pk)
        permissions.require_override(actor, "change", original.feature)
    permissions.require_override(actor, "add" if override.pk is None else "change", override.feature)
    try:
        atomic(save_audited)(override, actor=actor, reason=reason, source=source)
    except IntegrityError as error:
        # Another write of an overlapping window committed between clean() and this insert:
        # the database's exclusion constraint refused it (migration 0004).
        if getattr(getattr(error.__cause__, "diag", None), "constraint_name", None) != Override.NO_OVERLAP:
            raise
        raise ValidationError(
            {"valid_from": "This window overlaps another override of this feature on this subscription."}
        ) from error
    revisions.customers_changed([override.subscription.customer.external_id])
    return override


def override_grant(
    *,
    subscription: Subscription,
    feature: Feature,
    value: object,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    actor: User | None,
    reason: str,
    source: str,
) -> Override:
    """Give one subscription a feature outside its plan, for a while or for good."""
    override = Override(
        subscription=subscription,
        feature=feature,
        effect=Override.Effect.GRANT,
        value=value,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    return override_save(override=override, actor=actor, reason=reason, source=source)


def override_revoke(
    *,
    subscription: Subscription,
    feature: Feature,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    actor: User | None,
    reason: str,
    source: str,
) -> Override:
    """Take a feature away from one subscription, whatever its plan or segments say."""
    override = Override(
        subscription=subscription,
        feature=feature,
        effect=Override.Effect.REVOKE,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    return override_save(override=override, actor=actor, reason=reason, source=source)


def override_create(
    *,
    subscription_id: str,
    feature_key: str,
    effect: str,
    value: object = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    actor: User | None,
    reason: str,
    source: str,
) -> Override:
    """Grant (with `value`) or revoke the feature `feature_key` on the subscription with
    external id `subscription_id`, for a while or for good."""
    subscription = find(
        Subscription.objects.select_related("customer"),
        missing=f"No subscription {subscription_id}.",
        external_id=subscription_id,
    )
    feature = find(Feature.objects, key=feature_key)
    if feature is None:
        raise ValidationError({"feature": f"Unknown feature {feature_key}."})
    who = {"actor": actor, "reason": reason, "source": source}
    window = {"valid_from": valid_from, "valid_until": valid_until}
    if effect == Override.Effect.REVOKE:
        return override_revoke(subscription=subscription, feature=feature, **window, **who)
    return override_grant(subscription=subscription, feature=feature, value=value, **window, **who)


@atomic
def override_end(
    *, override: Override, actor: User | None, reason: str, source: str, at: datetime | None = None
) -> Override | None:
    """End an override now (history keeps it); one that has not started yet is removed."""
    at = at or timezone.now()
    if override.valid_from is not None and override.valid_from >= at:
        override_delete(override=override, actor=actor, reason=reason, source=source)
        return None
    if override.valid_until is not None and override.valid_until <= at:
        return override
    override.valid_until = at
    return override_save(override=override, actor=actor, reason=reason, source=source)


@atomic
def override_delete(*, override: Override, actor: User | None, reason: str, source: str) -> None:
    permissions.require_override(actor, "delete", override.feature)
    external_id = override.subscription.customer.external_id
    delete_audited(override, actor=actor, reason=reason, source=source)
    revisions.customers_changed([external_id])


@atomic
def topup_grant(
    *,
    customer: Customer,
    feature: Feature,
    amount: int,
    actor: User | None,
    reason: str,
    source: str,
    at: datetime | None = None,
) -> TopUp:
    """Raise the customer's limit of the metered `feature` by `amount` for the current usage
    period only. Refused for a feature the customer does not have, or has without limit."""
    permissions.require_top_up(actor, feature)
    if not feature.is_metered:
        raise ValidationError(
            {"feature": f"{feature.key} is not metered: only a usage limit can be topped up."}
        )
    answer = resolve_customer(customer, now=at or timezone.now()).answers.get(feature.key)
    if answer is None or not answer.granted:
        raise ValidationError(
            {"feature": f"{customer.external_id} does not have {feature.key}: there is no limit to top up."}
        )
    if answer.unlimited:
        raise ValidationError({"feature": f"{customer.external_id} has {feature.key} without limit already."})
    topup = TopUp(customer=customer, feature=feature, period_start=answer.period_start, amount=amount)
    save_audited(topup, actor=actor, reason=reason, source=source)
    revisions.customers_changed([customer.external_id])
    return topup


def expire_ended_trials(*, now: datetime | None = None, batch: int = 500) -> int:
    """Trialing subscriptions past `trial_ends_at` become `expired`, each recorded in history
    with a system reason. Resolution already stops serving them at the trial's end; this
    makes the status say so. Claimed with SKIP LOCKED, so several workers may run it."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer")
                .filter(status=Subscription.Status.TRIALING, trial_ends_at__lte=now)
                .order_by("trial_ends_at")[:batch]
            )
            for subscription in due:
                subscription.status = Subscription.Status.EXPIRED
                reason = (
                    f"Trial ended at {subscription.trial_ends_at:%Y-%m-%d %H:%M} UTC: expired automatically."
                )
                subscription_save(subscription=subscription, actor=None, reason=reason, source="task")
        expired += len(due)
        if len(due) < batch:
            return expired
