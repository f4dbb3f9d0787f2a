"""Usage figures read from the durable rows: a customer's metered features this period, day by
day, against the limit its answer gives; and a batch's usage summed per customer, feature and
period for the dashboard. Usage is recorded through the meter, as the usage endpoints do."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from catalog.models import Feature
from catalog.selectors import load_catalog_specs
from subscriptions.models import Customer, Override, Subscription
from subscriptions.selectors import resolve_customer
from tests import factories as f
from toolkit.change_context import change_context
from usage import meter
from usage.selectors import PeriodUsage, current_usage, period_days, period_totals

pytestmark = pytest.mark.django_db


def meter_of(customer: Customer, feature_key: str, *, now: datetime | None = None) -> meter.Meter:
    """The customer's meter of a metered feature, built from its answer as a check builds it."""
    catalog = load_catalog_specs()
    answer = resolve_customer(customer, now=now, catalog=catalog).answers[feature_key]
    return meter.Meter(
        customer_id=customer.pk,
        external_id=customer.external_id,
        feature_id=catalog.feature_ids[feature_key],
        feature_key=feature_key,
        period_start=answer.period_start,
        resets_at=answer.resets_at,
        limit=None if answer.unlimited else answer.value if answer.granted else 0,
        hard=answer.hard,
        granted=answer.granted,
    )


def record_usage(
    external_id: str, feature_key: str, quantity: int, *, at: datetime | None = None
) -> meter.Outcome:
    """Count usage that happened at `at` (now by default) in the customer's current period,
    as `POST …/usage` does: whatever the limit (nothing for a customer without the feature)."""
    return meter.report(meter_of(Customer.objects.get(external_id=external_id), feature_key), quantity, at=at)


def usage_of(external_id: str) -> dict[str, PeriodUsage]:
    customer = Customer.objects.get(external_id=external_id)
    catalog = load_catalog_specs()
    answers = resolve_customer(customer, catalog=catalog).answers.values()
    return {u.feature_key: u for u in current_usage(customer.pk, answers, catalog.feature_ids)}


# --- one customer --------------------------------------------------------------------------------


def test_current_usage__reports_on_two_days__summed_per_day_against_the_plans_limit(demo):
    # Given northwind (basic: api-calls 1,000 a billing month, hard) with usage on two days
    start = meter_of(Customer.objects.get(external_id="northwind"), "api-calls").period_start
    earlier = start + timedelta(hours=1)
    record_usage("northwind", "api-calls", 300, at=earlier)
    record_usage("northwind", "api-calls", 250)
    record_usage("northwind", "api-calls", 300)

    # When its usage is read
    api_calls = usage_of("northwind")["api-calls"]

    # Then the period's total, what remains, and each day's share are the rows'
    assert (api_calls.used, api_calls.limit, api_calls.remaining) == (850, 1000, 150)
    assert api_calls.percent == 85
    assert api_calls.level == "near"
    assert api_calls.hard and api_calls.granted
    days = dict(api_calls.days)
    today = timezone.now().astimezone(UTC).date()
    assert days[earlier.date()] == 300
    assert days[today] == 550
    assert sum(days.values()) == 850
    assert [day for day, _ in api_calls.days] == period_days(api_calls.period_start, api_calls.resets_at)


def test_current_usage__rows_of_an_earlier_period_and_of_others__not_counted(demo):
    northwind = Customer.objects.get(external_id="northwind")
    this_period = meter_of(northwind, "api-calls")
    last_period = dataclasses.replace(
        this_period,
        period_start=this_period.period_start - timedelta(days=30),
        resets_at=this_period.period_start,
    )
    meter.report(last_period, 700, at=last_period.period_start + timedelta(days=1))
    record_usage("contoso", "api-calls", 5_000)
    record_usage("northwind", "api-calls", 10)

    assert usage_of("northwind")["api-calls"].used == 10


def test_current_usage__soft_limit_passed__reached_and_nothing_remains(demo):
    # acme (business: ai-tokens 2,000,000 a calendar month, soft) reports past its limit
    record_usage("acme", "ai-tokens", 2_500_000)

    tokens = usage_of("acme")["ai-tokens"]

    assert (tokens.used, tokens.limit, tokens.remaining) == (2_500_000, 2_000_000, 0)
    assert tokens.percent == 125
    assert tokens.level == "reached"
    assert not tokens.hard


def test_current_usage__unlimited__no_limit_no_percent_no_level(demo):
    record_usage("globex", "ai-tokens", 9_000_000)  # enterprise: unlimited

    tokens = usage_of("globex")["ai-tokens"]

    assert (tokens.used, tokens.limit, tokens.remaining, tokens.percent) == (9_000_000, None, None, None)
    assert tokens.unlimited and tokens.level == ""


def test_current_usage__used_then_revoked__listed_with_nothing_left_to_use(demo):
    # Given northwind used 30 api-calls this period, then had them revoked
    record_usage("northwind", "api-calls", 30)
    with change_context(actor=None, reason="Abuse, ticket SEC-3", source="shell"):
        f.OverrideFactory(
            subscription=Subscription.objects.get(external_id="sub-northwind"),
            feature=Feature.objects.get(key="api-calls"),
            effect=Override.Effect.REVOKE,
            value=None,
        )

    usage = usage_of("northwind")

    # Then the usage still shows, against nothing
    assert (usage["api-calls"].granted, usage["api-calls"].limit, usage["api-calls"].used) == (False, 0, 30)
    assert usage["api-calls"].remaining == 0
    assert usage["api-calls"].level == "reached"


def test_current_usage__features_had_without_usage__listed_at_zero(demo):
    usage = usage_of("acme")  # business: ai-tokens, no api-calls

    assert list(usage) == ["ai-tokens"]
    assert (usage["ai-tokens"].used, usage["ai-tokens"].remaining) == (0, 2_000_000)


def test_current_usage__no_metered_answer__asks_the_database_nothing(demo, django_assert_num_queries):
    customer = Customer.objects.get(external_id="streamfan")
    catalog = load_catalog_specs()
    answers = [a for a in resolve_customer(customer, catalog=catalog).answers.values() if a.kind != "metered"]

    with django_assert_num_queries(0):
        assert current_usage(customer.pk, answers, catalog.feature_ids) == []


def test_current_usage__usage_on_many_days__one_query(demo, django_assert_num_queries):
    # Given umbrella's ai-tokens used every seven hours of its period so far
    start = meter_of(Customer.objects.get(external_id="umbrella"), "ai-tokens").period_start
    moments = [start + timedelta(hours=h) for h in range(0, 24 * 31, 7)]
    for moment in moments:
        if moment < timezone.now():
            record_usage("umbrella", "ai-tokens", 1000, at=moment)
    customer = Customer.objects.get(external_id="umbrella")
    catalog = load_catalog_specs()
    answers = resolve_customer(customer, catalog=catalog).answers.values()

    # When its usage is read: one query, whatever the number of rows and days
    with django_assert_num_queries(1):
        usage = current_usage(customer.pk, answers, catalog.feature_ids)

    # Then every row is counted, each on its day
    assert [u.feature_key for u in usage] == ["ai-tokens"]
    counted = sum(1 for moment in moments if moment < timezone.now())
    assert usage[0].used == 1000 * counted
    assert sum(n for _day, n in usage[0].days) == usage[0].used


# --- levels and days -----------------------------------------------------------------------------


def _usage(used: int, limit: int | None) -> PeriodUsage:
    now = timezone.now()
    return PeriodUsage(1, "api-calls", True, limit, True, now, now + timedelta(days=30), used)


@pytest.mark.parametrize(
    ("used", "limit", "level"),
    [
        (0, 1000, ""),
        (799, 1000, ""),
        (800, 1000, "near"),
        (999, 1000, "near"),
        (1000, 1000, "reached"),
        (1500, 1000, "reached"),
        (0, 0, "reached"),  # a limit of 0 has nothing to use
        (10**9, None, ""),
    ],
)
def test_level__by_share_of_the_limit(used, limit, level):
    assert _usage(used, limit).level == level


def test_period_days__billing_cycle_from_10_00__first_and_last_days_in_part():
    start = datetime(2026, 2, 15, 10, tzinfo=UTC)

    days = period_days(start, datetime(2026, 3, 15, 10, tzinfo=UTC))

    assert days[0] == date(2026, 2, 15) and days[-1] == date(2026, 3, 15)
    assert len(days) == 29


def test_period_days__calendar_month__its_days_only():
    days = period_days(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))

    assert (days[0], days[-1], len(days)) == (date(2026, 12, 1), date(2026, 12, 31), 31)


# --- a batch of customers ------------------------------------------------------------------------


def test_period_totals__a_range_of_customers__summed_per_customer_feature_and_period(
    demo, django_assert_num_queries
):
    catalog = load_catalog_specs()
    record_usage("northwind", "api-calls", 400)
    record_usage("northwind", "api-calls", 500)
    record_usage("acme", "ai-tokens", 7)
    record_usage("contoso", "api-calls", 11)
    customers = {c.external_id: c for c in Customer.objects.filter(external_id__in=["northwind", "acme"])}
    starts = {
        "northwind": meter_of(customers["northwind"], "api-calls").period_start,
        "acme": meter_of(customers["acme"], "ai-tokens").period_start,
    }
    first, last = sorted(c.pk for c in customers.values())

    with django_assert_num_queries(1):
        totals = period_totals(first_customer_id=first, last_customer_id=last, since=min(starts.values()))

    northwind, acme = customers["northwind"].pk, customers["acme"].pk
    assert totals[northwind, catalog.feature_ids["api-calls"], starts["northwind"]] == 900
    assert totals[acme, catalog.feature_ids["ai-tokens"], starts["acme"]] == 7
    assert {customer_id for customer_id, _f, _s in totals} <= {
        c.pk for c in Customer.objects.filter(pk__gte=first, pk__lte=last)
    }
    only_northwind = period_totals(
        first_customer_id=northwind, last_customer_id=northwind, since=starts["northwind"]
    )
    assert only_northwind == {(northwind, catalog.feature_ids["api-calls"], starts["northwind"]): 900}


def test_period_totals__periods_before_since__left_out(demo):
    northwind = Customer.objects.get(external_id="northwind")
    this_period = meter_of(northwind, "api-calls")
    earlier = dataclasses.replace(this_period, period_start=this_period.period_start - timedelta(days=30))
    meter.report(earlier, 700, at=earlier.period_start + timedelta(days=1))
    record_usage("northwind", "api-calls", 5)

    totals = period_totals(
        first_customer_id=northwind.pk, last_customer_id=northwind.pk, since=this_period.period_start
    )

    assert list(totals.values()) == [5]
