"""Writes to customers, subscriptions, add-ons and overrides. Each checks permission,
validates, saves in a change context and moves the customer's revision after commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.writes import delete_audited, save_audited
from catalog import revisions
from catalog.models import Feature, Item
from subscriptions import permissions
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def customer_save(*, customer: Customer, actor: User | None, reason: str, source: str) -> Customer:
    """Create or change a customer (name, country, traits)."""
    permissions.require(actor, "add" if customer.pk is None else "change", "customer")
    save_audited(customer, actor=actor, reason=reason, source=source)
    revisions.customers_changed([customer.pk])
    return customer


@transaction.atomic
def subscription_save(
    *, subscription: Subscription, actor: User | None, reason: str, source: str
) -> Subscription:
    """Create a subscription or change its plan, status or dates. A legacy or archived plan
    is refused for a new subscription or a plan change (the model's clean says so)."""
    permissions.require(actor, "add" if subscription.pk is None else "change", "subscription")
    save_audited(subscription, actor=actor, reason=reason, source=source)
    revisions.customers_changed([subscription.customer_id])
    return subscription


@transaction.atomic
def subscription_addon_save(
    *, addon: SubscriptionAddon, actor: User | None, reason: str, source: str
) -> SubscriptionAddon:
    """Add an add-on to a subscription or change its quantity."""
    permissions.require(actor, "change", "subscription")
    save_audited(addon, actor=actor, reason=reason, source=source)
    revisions.customers_changed([addon.subscription.customer_id])
    return addon


@transaction.atomic
def subscription_addon_delete(
    *, addon: SubscriptionAddon, actor: User | None, reason: str, source: str
) -> None:
    permissions.require(actor, "change", "subscription")
    delete_audited(addon, actor=actor, reason=reason, source=source)
    revisions.customers_changed([addon.subscription.customer_id])


@transaction.atomic
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
    existing = {a.addon_id: a for a in subscription.addons.select_related("addon")}
    for addon_id, addon in existing.items():
        if addon_id not in keys:
            subscription_addon_delete(addon=addon, actor=actor, reason=reason, source=source)
    for item, quantity in addons:
        addon = existing.get(item.pk) or SubscriptionAddon(subscription=subscription, addon=item)
        if addon.pk is None or addon.quantity != quantity:
            addon.quantity = quantity
            subscription_addon_save(addon=addon, actor=actor, reason=reason, source=source)
    return subscription


@transaction.atomic
def override_save(*, override: Override, actor: User | None, reason: str, source: str) -> Override:
    """Create or change an override; the actor must be allowed to grant its feature (before
    and, if the feature changed, after)."""
    if override.pk is not None:
        original = Override.objects.select_related("feature").get(pk=override.pk)
        permissions.require_override(actor, "change", original.feature)
    permissions.require_override(actor, "add" if override.pk is None else "change", override.feature)
    try:
        with transaction.atomic():
            save_audited(override, actor=actor, reason=reason, source=source)
    except IntegrityError as error:
        # Another write of an overlapping window committed between clean() and this insert:
        # the database's exclusion constraint refused it (migration 0004).
        if getattr(getattr(error.__cause__, "diag", None), "constraint_name", None) != Override.NO_OVERLAP:
            raise
        raise ValidationError(
            {"valid_from": "This window overlaps another override of this feature on this subscription."}
        ) from error
    revisions.customers_changed([override.subscription.customer_id])
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


@transaction.atomic
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


@transaction.atomic
def override_delete(*, override: Override, actor: User | None, reason: str, source: str) -> None:
    permissions.require_override(actor, "delete", override.feature)
    customer_id = override.subscription.customer_id
    delete_audited(override, actor=actor, reason=reason, source=source)
    revisions.customers_changed([customer_id])


def expire_ended_trials(*, now: datetime | None = None, batch: int = 500) -> int:
    """Trialing subscriptions past `trial_ends_at` become `expired`, each recorded in history
    with a system reason. Resolution already stops serving them at the trial's end; this
    makes the status say so. Claimed with SKIP LOCKED, so several workers may run it."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                Subscription.objects.select_for_update(skip_locked=True)
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
