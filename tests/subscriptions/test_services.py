"""Writes to customers, subscriptions, add-ons and overrides through their services, on
PostgreSQL: the rules they keep and the history they leave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscriptions import services
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from tests import factories as f
from toolkit.change_context import ChangeReasonRequired, change_context

pytestmark = pytest.mark.django_db

WHO = {"actor": None, "reason": "Ticket SUP-40", "source": "shell"}
NOW = timezone.now().replace(microsecond=0)


# --- customers ----------------------------------------------------------------------------------


def test_customer_save__country_not_an_iso_code__refused_and_nothing_saved(db):
    with pytest.raises(ValidationError) as error:
        services.customer_save(customer=Customer(external_id="acme", name="Acme", country="XX"), **WHO)

    assert "country" in error.value.message_dict
    assert not Customer.objects.filter(external_id="acme").exists()


def test_customer_save__unchanged__records_no_new_history_row(shop):
    customer = Customer.objects.get(pk=shop.customer.pk)
    history_before = customer.history.count()

    services.customer_save(customer=customer, **WHO)

    assert customer.history.count() == history_before


def test_customer_save__traits_changed_in_place__recorded_in_history(shop):
    customer = Customer.objects.get(pk=shop.customer.pk)
    history_before = customer.history.count()
    customer.traits["industry"] = "media"

    services.customer_save(customer=customer, **WHO)

    assert Customer.objects.get(pk=customer.pk).traits == {"industry": "media"}
    assert customer.history.count() == history_before + 1
    latest = customer.history.latest()
    assert (latest.traits, latest.history_change_reason) == ({"industry": "media"}, "Ticket SUP-40")


def test_customer_write__outside_a_change_context__raises_and_saves_nothing(db):
    with pytest.raises(ChangeReasonRequired):
        Customer(external_id="sneaky", name="Sneaky").save()

    assert not Customer.objects.filter(external_id="sneaky").exists()


@pytest.mark.parametrize("model", [Customer, Subscription, Override], ids=lambda m: m.__name__)
def test_queryset_update__on_a_tracked_model__raises_and_changes_nothing(shop, model):
    with change_context(actor=None, reason="Test data", source="shell"):
        f.OverrideFactory(subscription=shop.subscription, feature=shop.feature)
    before = list(model.objects.order_by("pk").values())

    with pytest.raises(ChangeReasonRequired), change_context(**WHO):
        model.objects.update(created_at=NOW - timedelta(days=365))

    assert list(model.objects.order_by("pk").values()) == before


# --- subscriptions ------------------------------------------------------------------------------


def test_subscription_save__new_on_a_legacy_plan__refused_and_nothing_saved(shop):
    subscription = Subscription(external_id="sub-new", customer=shop.customer, plan=shop.legacy)

    with pytest.raises(ValidationError) as error:
        services.subscription_save(subscription=subscription, **WHO)

    assert error.value.message_dict["plan"] == [
        "business-2024 is legacy: no new subscription may be put on it."
    ]
    assert not Subscription.objects.filter(external_id="sub-new").exists()


def test_subscription_save__plan_changed_to_a_legacy_plan__refused(shop):
    subscription = Subscription.objects.get(pk=shop.subscription.pk)
    subscription.plan = shop.legacy

    with pytest.raises(ValidationError, match="no new subscription may be put on it"):
        services.subscription_save(subscription=subscription, **WHO)

    assert Subscription.objects.get(pk=subscription.pk).plan == shop.plan


def test_subscription_save__already_on_a_legacy_plan__status_change_allowed(shop):
    with change_context(actor=None, reason="Test data", source="shell"):
        grandfathered = f.SubscriptionFactory(external_id="sub-vandelay", plan=shop.legacy)
    subscription = Subscription.objects.get(pk=grandfathered.pk)
    subscription.status = Subscription.Status.PAST_DUE
    subscription.past_due_since = NOW

    services.subscription_save(subscription=subscription, **WHO)

    subscription.refresh_from_db()
    assert (subscription.plan, subscription.status) == (shop.legacy, "past_due")


def test_subscription_save__trialing_without_an_end__refused(shop):
    subscription = Subscription.objects.get(pk=shop.subscription.pk)
    subscription.status = Subscription.Status.TRIALING

    with pytest.raises(ValidationError) as error:
        services.subscription_save(subscription=subscription, **WHO)

    assert error.value.message_dict["trial_ends_at"] == [
        "A trialing subscription needs the date its trial ends."
    ]


# --- add-ons ------------------------------------------------------------------------------------


def addons_of(subscription) -> list[tuple[str, int]]:
    return sorted(
        SubscriptionAddon.objects.filter(subscription=subscription).values_list("addon__key", "quantity")
    )


def test_subscription_set_addons__none_before__both_added(shop):
    services.subscription_set_addons(
        subscription=shop.subscription, addons=[(shop.seats, 2), (shop.storage, 1)], **WHO
    )

    assert addons_of(shop.subscription) == [("extra-seats", 2), ("extra-storage", 1)]


def test_subscription_set_addons__changed_list__quantities_set_and_missing_ones_removed(shop):
    services.subscription_set_addons(
        subscription=shop.subscription, addons=[(shop.seats, 2), (shop.storage, 1)], **WHO
    )

    services.subscription_set_addons(subscription=shop.subscription, addons=[(shop.seats, 5)], **WHO)

    assert addons_of(shop.subscription) == [("extra-seats", 5)]
    removed = SubscriptionAddon.history.filter(addon_id=shop.storage.pk).latest()
    assert (removed.history_type, removed.history_change_reason) == ("-", "Ticket SUP-40")


def test_subscription_set_addons__same_list_again__records_no_new_history_row(shop):
    services.subscription_set_addons(subscription=shop.subscription, addons=[(shop.seats, 2)], **WHO)
    history_before = SubscriptionAddon.history.count()

    services.subscription_set_addons(subscription=shop.subscription, addons=[(shop.seats, 2)], **WHO)

    assert SubscriptionAddon.history.count() == history_before


def test_subscription_set_addons__same_addon_twice__refused_and_nothing_changed(shop):
    with pytest.raises(ValidationError, match="Each add-on may appear only once"):
        services.subscription_set_addons(
            subscription=shop.subscription, addons=[(shop.seats, 1), (shop.seats, 2)], **WHO
        )

    assert addons_of(shop.subscription) == []


def test_subscription_set_addons__a_plan_given_as_addon__refused(shop):
    with pytest.raises(ValidationError) as error:
        services.subscription_set_addons(subscription=shop.subscription, addons=[(shop.plan, 1)], **WHO)

    assert "business is a plan, not an add-on." in error.value.message_dict["addon"]
    assert addons_of(shop.subscription) == []


# --- overrides ----------------------------------------------------------------------------------


def grant(shop, **window) -> Override:
    return services.override_grant(
        subscription=shop.subscription, feature=shop.feature, value=True, **window, **WHO
    )


def test_override_end__live_override__ends_now_and_history_keeps_it(shop):
    override = grant(shop, valid_from=NOW - timedelta(days=1), valid_until=NOW + timedelta(days=2))

    ended = services.override_end(override=override, at=NOW, **WHO)

    assert ended.pk == override.pk
    assert Override.objects.get(pk=override.pk).valid_until == NOW
    assert [row.valid_until for row in override.history.order_by("history_id")] == [
        NOW + timedelta(days=2),
        NOW,
    ]


def test_override_end__not_started_yet__removed(shop):
    override = grant(shop, valid_from=NOW + timedelta(days=1))
    pk = override.pk

    assert services.override_end(override=override, at=NOW, **WHO) is None

    assert not Override.objects.filter(pk=pk).exists()
    assert Override.history.filter(id=pk).latest().history_type == "-"


def test_override_end__already_ended__left_as_it_was(shop):
    override = grant(shop, valid_from=NOW - timedelta(days=3), valid_until=NOW - timedelta(days=1))
    history_before = override.history.count()

    services.override_end(override=override, at=NOW, **WHO)

    assert Override.objects.get(pk=override.pk).valid_until == NOW - timedelta(days=1)
    assert override.history.count() == history_before


def test_override_grant__overlapping_one_of_the_same_feature__refused(shop):
    first = grant(shop, valid_from=NOW, valid_until=NOW + timedelta(days=2))

    with pytest.raises(ValidationError) as error:
        grant(shop, valid_from=NOW + timedelta(days=1))

    assert error.value.message_dict["valid_from"][0].startswith(f"This window overlaps override #{first.pk}")
    assert list(Override.objects.filter(subscription=shop.subscription)) == [first]


def test_override_grant__next_window_after_the_first_ends__allowed(shop):
    grant(shop, valid_from=NOW, valid_until=NOW + timedelta(days=2))

    grant(shop, valid_from=NOW + timedelta(days=2), valid_until=NOW + timedelta(days=3))

    assert Override.objects.filter(subscription=shop.subscription).count() == 2


def test_override_grant__ends_before_it_starts__refused(shop):
    with pytest.raises(ValidationError) as error:
        grant(shop, valid_from=NOW, valid_until=NOW - timedelta(hours=1))

    assert error.value.message_dict["valid_until"] == ["The end must come after the start."]
    assert not Override.objects.exists()


def test_override_revoke__value_given_nowhere__stored_without_a_value(shop):
    override = services.override_revoke(subscription=shop.subscription, feature=shop.feature, **WHO)

    override.refresh_from_db()
    assert (override.effect, override.value) == ("revoke", None)
