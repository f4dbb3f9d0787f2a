"""The demo catalogue, loaded by the real `seed_demo` and resolved through the
selector on PostgreSQL: each scenario the demo exists to show, with its value and source."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from catalog.models import Item
from subscriptions.models import Customer, Override, Subscription
from subscriptions.resolution import Answer
from subscriptions.selectors import resolve_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_seeded_once_per_module() -> bool:
    """This module's tests only read the demo (or write in their own savepoints)."""
    return True


def resolve(external_id: str, *, now=None) -> dict[str, Answer]:
    customer = Customer.objects.get(external_id=external_id)
    return dict(resolve_customer(customer, now=now or timezone.now()).answers)


def from_plans(answers: dict[str, Answer]) -> dict[str, object]:
    """The features a customer has through its plans and add-ons, with their values."""
    return {
        key: a.value for key, a in answers.items() if a.enabled and a.source.startswith(("plan:", "addon:"))
    }


def test_acme__business_plan_with_two_extra_seats__max_members_35_named_by_plan(demo):
    answer = resolve("acme")["max-members"]

    assert (answer.enabled, answer.value, answer.unlimited) == (True, 35, False)
    assert answer.source == "plan:business"
    assert answer.valid_until is None


def test_globex__enterprise_plan__max_members_unlimited(demo):
    answer = resolve("globex")["max-members"]

    assert (answer.enabled, answer.value, answer.unlimited) == (True, None, True)
    assert answer.source == "plan:enterprise"


def test_streamfan__support_override_for_the_event__4k_on_until_the_override_ends(demo):
    override = Override.objects.get(
        subscription__customer__external_id="streamfan", feature__key="4k-streaming"
    )

    answer = resolve("streamfan")["4k-streaming"]

    assert (answer.enabled, answer.value) == (True, True)
    assert answer.source == f"override:{override.pk}"
    assert answer.valid_until == override.valid_until


def test_streamfan__at_the_end_of_the_override__4k_off_from_the_standard_plan(demo):
    override = Override.objects.get(
        subscription__customer__external_id="streamfan", feature__key="4k-streaming"
    )

    answers = resolve("streamfan", now=override.valid_until)

    assert (answers["4k-streaming"].enabled, answers["4k-streaming"].source) == (False, "default")
    assert answers["max-simultaneous-streams"].value == 1


def test_cinephile__premium_plan_in_the_us__live_sports_off_by_market(demo):
    answers = resolve("cinephile")

    assert (answers["live-sports"].enabled, answers["live-sports"].source) == (False, "market")
    assert (answers["4k-streaming"].enabled, answers["4k-streaming"].source) == (
        True,
        "plan:streaming-premium",
    )


def test_sportsbar__premium_plan_in_ireland__live_sports_on(demo):
    answer = resolve("sportsbar")["live-sports"]

    assert (answer.enabled, answer.value, answer.source) == (True, True, "plan:streaming-premium")


def test_initech__trialing__max_members_5_until_the_trial_ends(demo):
    trial_end = Subscription.objects.get(customer__external_id="initech").trial_ends_at

    answer = resolve("initech")["max-members"]

    assert (answer.enabled, answer.value, answer.source) == (True, 5, "plan:starter")
    assert answer.valid_until == trial_end


def test_initech__when_the_trial_has_ended__max_members_off(demo):
    trial_end = Subscription.objects.get(customer__external_id="initech").trial_ends_at

    answer = resolve("initech", now=trial_end)["max-members"]

    assert (answer.enabled, answer.value, answer.source) == (False, 0, "default")


def test_hooli__past_due_beyond_grace__plans_give_only_data_export(demo):
    answers = resolve("hooli")

    assert from_plans(answers) == {"data-export": True}
    assert (answers["max-members"].enabled, answers["max-members"].value) == (False, 0)


def test_umbrella__past_due_within_grace__full_access_until_grace_ends(demo):
    subscription = Subscription.objects.select_related("plan").get(customer__external_id="umbrella")
    grace_end = subscription.past_due_since + timedelta(days=subscription.plan.grace_days)

    answers = resolve("umbrella")

    assert from_plans(answers) == {"max-members": 25, "data-export": True, "ai-tokens": 2_000_000}
    assert answers["max-members"].source == "plan:business"
    assert answers["max-members"].valid_until == grace_end


def test_umbrella__after_the_grace_period__only_data_export_remains(demo):
    subscription = Subscription.objects.select_related("plan").get(customer__external_id="umbrella")
    grace_end = subscription.past_due_since + timedelta(days=subscription.plan.grace_days)

    answers = resolve("umbrella", now=grace_end)

    assert from_plans(answers) == {"data-export": True}


@pytest.mark.parametrize(
    ("external_id", "status"),
    [("fabrikam", "paused"), ("oldco", "canceled"), ("tryhard", "trialing")],
)
def test_dead_subscription__paused_canceled_or_trial_expired__customer_has_nothing(demo, external_id, status):
    assert Subscription.objects.get(customer__external_id=external_id).status == status

    answers = resolve(external_id)

    assert from_plans(answers) == {}
    assert [key for key, a in answers.items() if a.enabled] == []


def test_northwind__basic_plan__change_request_from_segment_and_version_v1_from_plan(demo):
    answers = resolve("northwind")

    assert (answers["change-request"].enabled, answers["change-request"].source) == (
        True,
        "segment:basic-or-higher",
    )
    version = answers["change-request-version"]
    assert (version.value, version.source) == ("v1", "plan:basic")


def test_contoso__on_the_beta_list__change_request_version_v2(demo):
    version = resolve("contoso")["change-request-version"]

    assert (version.enabled, version.value, version.source) == (True, "v2", "segment:beta")


def test_vandelay__on_the_legacy_business_2024_plan__keeps_max_members_50(demo):
    assert Item.objects.get(key="business-2024").status == Item.Status.LEGACY

    answer = resolve("vandelay")["max-members"]

    assert (answer.enabled, answer.value, answer.source) == (True, 50, "plan:business-2024")


def test_prospect__no_subscription__everything_off_by_default(demo):
    answers = resolve("prospect")

    assert [key for key, a in answers.items() if a.enabled] == []
    # Sweden is outside live-sports' markets, which is checked before anything else.
    assert {key: a.source for key, a in answers.items() if a.source != "default"} == {"live-sports": "market"}


def test_seed_demo__run_a_second_time__creates_no_rows_and_no_history(demo):
    # Every model, history tables and the audit log included.
    def row_counts() -> dict[str, int]:
        return {model._meta.label: model._default_manager.count() for model in apps.get_models()}

    before = row_counts()

    call_command("seed_demo", verbosity=0)

    after = row_counts()
    assert {label: (before[label], n) for label, n in after.items() if before[label] != n} == {}
    assert any(label.startswith("catalog.Historical") and n > 0 for label, n in before.items())


def test_acme__max_members_35__parts_plan_25_and_two_extra_seats_of_5(demo):
    answer = resolve("acme")["max-members"]

    parts = [(c.source, c.units, c.per_unit, c.amount) for c in answer.contributions]
    assert parts == [("plan:business", 1, 25, 25), ("addon:extra-seats", 2, 5, 10)]


def test_vandelay__60_seats_negotiated_from_next_month__plan_50_until_then_then_the_grant(demo):
    override = Override.objects.get(
        subscription__customer__external_id="vandelay", feature__key="max-members"
    )
    now = timezone.now()

    before = resolve("vandelay", now=now)["max-members"]
    after = resolve("vandelay", now=override.valid_from)["max-members"]

    assert (override.valid_from.day, override.valid_from > now, override.valid_until) == (1, True, None)
    assert (before.value, before.source) == (50, "plan:business-2024")
    assert before.valid_until == override.valid_from
    assert (after.value, after.source, after.valid_until) == (60, f"override:{override.pk}", None)
