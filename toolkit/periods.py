"""Usage periods: the window a metered feature counts in (docs/usage.md).

A period is a day, an ISO week, a month or a year. It follows either the calendar (in UTC:
midnight, Monday midnight, the first of the month, the first of January) or a subscription's
billing cycle, anchored on the instant its current period ends: a monthly cycle ending on
15 March 10:00 began on 15 February 10:00. A cycle whose end has passed (the billing system
has not yet said when the next one ends) rolls on by whole periods, so usage never lands in
a period that is over.

Pure functions of their arguments: no clock, no database.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

DAY, WEEK, MONTH, YEAR = "day", "week", "month", "year"
PERIODS = (DAY, WEEK, MONTH, YEAR)
CALENDAR, BILLING_CYCLE = "calendar", "billing_cycle"
ANCHORS = (CALENDAR, BILLING_CYCLE)


def current_period(period: str, at: datetime, cycle_end: datetime | None = None) -> tuple[datetime, datetime]:
    """The period holding `at`, as [start, end). With `cycle_end` (a subscription's
    `current_period_end`), periods are whole steps back and forth from it; without, they follow
    the calendar in UTC."""
    at = at.astimezone(UTC)
    if cycle_end is None:
        start = _calendar_start(period, at)
        return start, step(period, start, 1)
    anchor = cycle_end.astimezone(UTC)
    # Walk from the anchor to the period holding `at`: an estimate first, then a step or two.
    count = _steps_between(period, anchor, at)
    end = step(period, anchor, count)
    while end <= at:
        count += 1
        end = step(period, anchor, count)
    start = step(period, anchor, count - 1)
    while start > at:
        count -= 1
        end, start = start, step(period, anchor, count - 1)
    return start, end


def step(period: str, moment: datetime, count: int) -> datetime:
    """`moment` moved by `count` periods. Months and years keep the day of the month where the
    month has it, else its last day (a cycle anchored on 31 January ends on 28 or 29 February,
    then 31 March: each step counts from the anchor, not from the previous end)."""
    if period == DAY:
        return moment + timedelta(days=count)
    if period == WEEK:
        return moment + timedelta(weeks=count)
    months = count * (12 if period == YEAR else 1)
    if period not in (MONTH, YEAR):
        raise ValueError(f"Unknown period {period!r}.")
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _calendar_start(period: str, at: datetime) -> datetime:
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == DAY:
        return midnight
    if period == WEEK:
        return midnight - timedelta(days=midnight.weekday())
    if period == MONTH:
        return midnight.replace(day=1)
    if period == YEAR:
        return midnight.replace(month=1, day=1)
    raise ValueError(f"Unknown period {period!r}.")


def _steps_between(period: str, anchor: datetime, at: datetime) -> int:
    """About how many periods after `anchor` the period ending after `at` ends."""
    if period == DAY:
        return (at - anchor) // timedelta(days=1)
    if period == WEEK:
        return (at - anchor) // timedelta(weeks=1)
    months = (at.year - anchor.year) * 12 + (at.month - anchor.month)
    return months // 12 if period == YEAR else months
