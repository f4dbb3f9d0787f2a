"""Usage periods (toolkit.periods): where each starts and ends, for the calendar and for a
billing cycle, at and around their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from toolkit.periods import current_period, step


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        ("day", utc(2026, 12, 7, 13, 5), utc(2026, 12, 7), utc(2026, 12, 8)),
        ("week", utc(2026, 12, 7, 0, 0), utc(2026, 12, 7), utc(2026, 12, 14)),  # a Monday
        ("week", utc(2026, 12, 13, 23, 59, 59), utc(2026, 12, 7), utc(2026, 12, 14)),  # Sunday night
        ("month", utc(2026, 12, 31, 23, 59, 59, 999999), utc(2026, 12, 1), utc(2027, 1, 1)),
        ("month", utc(2027, 1, 1), utc(2027, 1, 1), utc(2027, 2, 1)),
        ("year", utc(2028, 2, 29, 12), utc(2028, 1, 1), utc(2029, 1, 1)),
    ],
)
def test_calendar_periods_start_at_midnight_utc(period, at, start, end):
    assert current_period(period, at) == (start, end)


def test_a_calendar_period_is_read_in_utc_whatever_the_offset_of_the_instant():
    # 00:30 on 1 January in Berlin is still 2026 in UTC.
    in_berlin = datetime(2027, 1, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))

    assert current_period("year", in_berlin) == (utc(2026, 1, 1), utc(2027, 1, 1))
    assert current_period("year", in_berlin + timedelta(hours=1)) == (utc(2027, 1, 1), utc(2028, 1, 1))


def test_a_billing_cycle_period_ends_at_the_cycle_end_and_began_one_period_before():
    cycle_end = utc(2026, 12, 15, 10)

    assert current_period("month", utc(2026, 12, 7), cycle_end) == (utc(2026, 11, 15, 10), cycle_end)
    assert current_period("month", utc(2026, 11, 15, 10), cycle_end) == (utc(2026, 11, 15, 10), cycle_end)
    assert current_period("month", utc(2026, 11, 15, 9, 59), cycle_end)[1] == utc(2026, 11, 15, 10)


def test_at_the_cycle_end_the_next_period_has_begun_even_before_billing_names_the_next_end():
    cycle_end = utc(2026, 12, 15, 10)

    assert current_period("month", cycle_end, cycle_end) == (cycle_end, utc(2027, 1, 15, 10))
    assert current_period("month", utc(2027, 3, 1), cycle_end) == (utc(2027, 2, 15, 10), utc(2027, 3, 15, 10))
    assert current_period("week", utc(2026, 12, 30), cycle_end) == (
        utc(2026, 12, 29, 10),
        utc(2027, 1, 5, 10),
    )
    assert current_period("day", utc(2026, 12, 15, 9), cycle_end) == (utc(2026, 12, 14, 10), cycle_end)
    assert current_period("year", utc(2026, 12, 15, 9), cycle_end) == (utc(2025, 12, 15, 10), cycle_end)


def test_a_cycle_anchored_on_the_31st_ends_on_each_months_last_day_when_the_month_is_shorter():
    anchor = utc(2027, 1, 31)

    assert [step("month", anchor, n) for n in range(4)] == [
        utc(2027, 1, 31),
        utc(2027, 2, 28),
        utc(2027, 3, 31),
        utc(2027, 4, 30),
    ]
    assert current_period("month", utc(2027, 3, 10), anchor) == (utc(2027, 2, 28), utc(2027, 3, 31))
    assert current_period("month", utc(2026, 12, 31, 12), anchor) == (utc(2026, 12, 31), utc(2027, 1, 31))


@pytest.mark.parametrize("period", ["day", "week", "month", "year"])
def test_every_instant_lies_in_exactly_one_period_that_follows_the_one_before(period):
    cycle_end = utc(2027, 1, 31, 17, 45)
    at = utc(2026, 1, 1)
    previous = None
    while at < utc(2028, 1, 1):
        start, end = current_period(period, at, cycle_end)
        assert start <= at < end
        if previous is not None and previous != (start, end):
            assert start == previous[1]
        previous = (start, end)
        at += timedelta(hours=7)  # shorter than any period: none is skipped
