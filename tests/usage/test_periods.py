"""A new usage period starts from zero at the right instant, for the calendar and for the
billing cycle, and a check is never answered from a period that is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checks import snapshots
from subscriptions.models import Subscription
from usage import meter

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)


def meter_at(customer: str, feature: str, at: datetime) -> meter.Meter:
    """The customer's meter as a check at `at` would find it."""
    snapshot = snapshots.build(customer, (1, 1), at)
    assert (
        snapshot.valid_until is not None
        and snapshot.valid_until <= snapshot.meter_of(feature).resets_at.timestamp()
    )
    return snapshot.meter_of(feature)


def test_calendar_month__the_count_starts_from_zero_at_midnight_utc_on_the_first(demo):
    first_of_next = (
        datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)
    ).replace(day=1)
    before = meter_at("acme", "ai-tokens", first_of_next - TICK)
    meter.consume(before, 1500, at=first_of_next - TICK)

    after = meter_at("acme", "ai-tokens", first_of_next)

    assert before.resets_at == after.period_start == first_of_next
    assert meter.used([before, after]) == [1500, 0]
    assert meter.consume(after, 10, at=first_of_next).used == 10
    assert meter.used([before]) == [1500]


def test_billing_cycle__the_count_starts_from_zero_when_the_subscriptions_period_ends(demo):
    cycle_end = Subscription.objects.get(external_id="sub-northwind").current_period_end
    before = meter_at("northwind", "api-calls", cycle_end - TICK)
    assert meter.consume(before, 1000, at=cycle_end - TICK).allowed
    assert not meter.consume(before, 1, at=cycle_end - TICK).allowed

    after = meter_at("northwind", "api-calls", cycle_end)

    assert (before.resets_at, after.period_start) == (cycle_end, cycle_end)
    assert after.resets_at.month == (cycle_end.month % 12) + 1
    assert meter.used([after]) == [0]
    assert meter.consume(after, 1, at=cycle_end).allowed


def test_billing_cycle__a_renewal_keeps_the_period_and_a_new_anchor_starts_one(demo, api):
    now = datetime.now(UTC)
    old = meter_at("northwind", "api-calls", now)
    meter.consume(old, 700)

    # The billing system renews: the period end moves a cycle on, the period holding now is the same.
    api.patch(
        "subscriptions/sub-northwind",
        {"current_period_end": (old.resets_at + timedelta(days=31)).isoformat()},
    )
    renewed = meter_at("northwind", "api-calls", now)
    # The cycle is moved to another day of the month (a plan change billed at once, say).
    moved_end = now + timedelta(days=3)
    api.patch("subscriptions/sub-northwind", {"current_period_end": moved_end.isoformat()})
    moved = meter_at("northwind", "api-calls", now)

    assert (renewed.period_start, renewed.resets_at) == (old.period_start, old.resets_at)
    assert meter.used([renewed]) == [700]
    assert moved.resets_at == moved_end
    assert moved.period_start != old.period_start
    assert meter.used([moved]) == [0]


def test_a_customer_without_a_billing_cycle_counts_by_the_calendar(demo, api):
    api.patch("subscriptions/sub-northwind", {"current_period_end": None})

    now = datetime.now(UTC)
    found = meter_at("northwind", "api-calls", now)

    assert found.period_start == now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
