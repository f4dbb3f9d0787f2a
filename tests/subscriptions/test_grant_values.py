"""A grant is a negotiated exception: its value fits the feature's kind, not its levels. The
rule (catalog.values.clean_grant_value), and each path that writes an override: the service
(admin and API call it), and the import of overrides."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from catalog.models import Feature
from catalog.values import LARGEST_WHOLE_NUMBER, clean_grant_value, clean_value
from subscriptions import services
from subscriptions.models import Customer, Override
from subscriptions.selectors import resolve_customer
from tests import factories as f
from toolkit.change_context import change_context

WHO = {"actor": None, "reason": "Contract ACME-2026: 40 seats negotiated", "source": "shell"}

SEATS = Feature(key="max-members", kind="quantity", levels=[5, 10, 25, 50], allow_unlimited=True)
STREAMS = Feature(key="max-simultaneous-streams", kind="quantity", levels=[1, 2, 4])
CALLS = Feature(key="api-calls-per-day", kind="range", min_value=100, max_value=1000)
SUPPORT = Feature(key="support-level", kind="custom", levels=["email", "email+chat"])
K4 = Feature(key="4k-streaming", kind="switch")


@pytest.mark.parametrize(
    ("feature", "typed", "granted"),
    [
        pytest.param(SEATS, 40, 40, id="quantity-not-a-level"),
        pytest.param(SEATS, "40", 40, id="quantity-typed-as-text"),
        pytest.param(SEATS, 0, 0, id="quantity-zero"),
        pytest.param(SEATS, "unlimited", "unlimited", id="quantity-unlimited-where-allowed"),
        pytest.param(SEATS, LARGEST_WHOLE_NUMBER, LARGEST_WHOLE_NUMBER, id="quantity-largest"),
        pytest.param(STREAMS, 3, 3, id="quantity-between-levels"),
        pytest.param(CALLS, 750, 750, id="range-within-bounds"),
        pytest.param(CALLS, "1000", 1000, id="range-upper-bound"),
        pytest.param(SUPPORT, "email+chat", "email+chat", id="custom-a-level"),
        pytest.param(K4, "on", True, id="switch-on"),
        pytest.param(K4, True, True, id="switch-true"),
    ],
)
def test_clean_grant_value__fits_the_kind__canonical_value(feature, typed, granted):
    assert clean_grant_value(feature, typed) == granted


@pytest.mark.parametrize(
    ("feature", "typed", "message"),
    [
        pytest.param(
            SEATS, -1, "-1 is below zero: give a whole number, 0 or more, or unlimited.", id="negative"
        ),
        pytest.param(
            SEATS,
            LARGEST_WHOLE_NUMBER + 1,
            "2147483648 is too large: at most 2,147,483,647 may be granted.",
            id="too-large",
        ),
        pytest.param(SEATS, 10**30, "is too large: at most 2,147,483,647", id="far-too-large"),
        pytest.param(SEATS, "lots", "“lots” is not a whole number", id="not-a-number"),
        pytest.param(SEATS, 2.5, "2.5 is not a whole number", id="fraction"),
        pytest.param(STREAMS, "unlimited", "does not allow unlimited", id="unlimited-not-allowed"),
        pytest.param(
            CALLS,
            99,
            "99 is outside api-calls-per-day's range: give a whole number from 100 to 1000.",
            id="range-below",
        ),
        pytest.param(
            SUPPORT,
            "phone",
            "“phone” is not a level of support-level: choose one of: email, email+chat.",
            id="custom-not-a-level",
        ),
        pytest.param(K4, "off", "a grant turns it on", id="switch-off"),
        pytest.param(
            SUPPORT, None, "A grant needs a value: choose one of: email, email+chat.", id="custom-empty"
        ),
        pytest.param(SEATS, "", "A grant needs a value: give a whole number", id="quantity-empty"),
    ],
)
def test_clean_grant_value__does_not_fit_the_kind__refused_saying_what_fits(feature, typed, message):
    with pytest.raises(ValidationError) as error:
        clean_grant_value(feature, typed)

    assert message in error.value.messages[0]
    assert "None" not in error.value.messages[0]


def test_clean_value__entitlement_or_rule_still_picks_a_level():
    with pytest.raises(ValidationError):
        clean_value(SEATS, 40)


# --- the service, on PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def business(db):
    with change_context(actor=None, reason="Test data", source="shell"):
        seats = f.FeatureFactory(key="max-members", quantity=True, allow_unlimited=True)
        plan = f.ItemFactory(key="business")
        f.EntitlementFactory(item=plan, feature=seats, value=25)
        subscription = f.SubscriptionFactory(external_id="sub-acme", plan=plan)
        return SimpleNamespace(seats=seats, plan=plan, subscription=subscription)


def test_override_grant__40_negotiated_seats_on_business__saved_and_answered(business):
    override = services.override_grant(
        subscription=business.subscription, feature=business.seats, value=40, **WHO
    )

    answer = resolve_customer(Customer.objects.get(pk=business.subscription.customer_id)).answers[
        "max-members"
    ]
    assert (answer.value, answer.source) == (40, f"override:{override.pk}")
    assert override.history.get().history_change_reason == WHO["reason"]


@pytest.mark.parametrize(
    ("value", "message"),
    [(-5, "below zero"), (2**31, "too large"), (2**70, "too large"), ("forty", "not a whole number")],
)
def test_override_grant__value_not_a_whole_number_from_0_to_the_largest__refused_nothing_saved(
    business, value, message
):
    with pytest.raises(ValidationError) as error:
        services.override_grant(
            subscription=business.subscription, feature=business.seats, value=value, **WHO
        )

    assert message in error.value.message_dict["value"][0]
    assert not Override.objects.exists()


def test_override_grant__starting_tomorrow__answer_holds_until_it_starts(business):
    tomorrow = timezone.now().replace(microsecond=0) + timezone.timedelta(days=1)
    services.override_grant(
        subscription=business.subscription, feature=business.seats, value=40, valid_from=tomorrow, **WHO
    )

    answer = resolve_customer(Customer.objects.get(pk=business.subscription.customer_id)).answers[
        "max-members"
    ]
    assert (answer.value, answer.source, answer.valid_until) == (25, "plan:business", tomorrow)


# --- the import of overrides ----------------------------------------------------------------------


def run_import(path, out: StringIO | None = None) -> str:
    out = out or StringIO()
    call_command(
        "bulk_import", "overrides", str(path), "--user", "sales", "--reason", WHO["reason"], stdout=out
    )
    return out.getvalue()


def test_bulk_import__overrides_with_negotiated_seats__granted(demo, tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text(
        "subscription,feature,valid_from,effect,value,valid_until\nsub-acme,max-members,,grant,40,\n"
    )

    run_import(path)

    override = Override.objects.get(subscription__external_id="sub-acme", feature__key="max-members")
    assert override.value == 40


def test_bulk_import__overrides_with_a_huge_number__refused_and_nothing_granted(demo, tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text(
        "subscription,feature,valid_from,effect,value,valid_until\nsub-acme,max-members,,grant,99999999999,\n"
    )

    out = StringIO()
    with pytest.raises(CommandError) as error:
        run_import(path, out)

    assert "1 refused" in str(error.value)
    assert "99999999999 is too large: at most 2,147,483,647 may be granted." in out.getvalue()
    assert not Override.objects.filter(
        subscription__external_id="sub-acme", feature__key="max-members"
    ).exists()
