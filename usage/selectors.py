"""Usage figures for the admin and the dashboard, summed from the durable rows (`Consumption`).

PostgreSQL holds every accepted consumption (usage.meter), so a sum of the rows of one
customer, feature and period is the period's count, the one a lost Redis counter is rebuilt
to: these reads need no Redis and touch no counter. A consumption still in flight is counted
once its transaction commits, a moment after the caller hears "allowed".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate

from subscriptions.resolution import METERED, Answer
from usage.models import Consumption

NEAR = 80  # per cent of a limit: "close to it", marked on the customer page and the dashboard
FULL = 100


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """One customer's metered feature in its current period: the limit its answer gives (with
    this period's top-ups), beside what was used, day by day."""

    feature_id: int
    feature_key: str
    granted: bool  # the customer has the feature (a limit of 0 is had)
    limit: int | None  # None: unlimited; 0 for a customer without the feature
    hard: bool
    period_start: datetime
    resets_at: datetime
    used: int
    topped_up: int = 0  # this period's top-ups, already in `limit`
    days: tuple[tuple[date, int], ...] = ()  # every day of the period, oldest first

    @classmethod
    def of(
        cls, answer: Answer, feature_id: int, used: int, by_day: Mapping[date, int] | None = None
    ) -> PeriodUsage:
        """The usage of a metered answer: its limit as a check serves it (a customer without
        the feature has none left), and, with `by_day`, every day of its period."""
        assert answer.period_start is not None and answer.resets_at is not None
        limit = None if answer.unlimited else int(answer.value) if answer.granted else 0
        days = ()
        if by_day is not None:
            days = tuple(
                (day, by_day.get(day, 0)) for day in period_days(answer.period_start, answer.resets_at)
            )
        return cls(
            feature_id=feature_id,
            feature_key=answer.feature_key,
            granted=answer.granted,
            limit=limit,
            hard=answer.hard,
            period_start=answer.period_start,
            resets_at=answer.resets_at,
            used=used,
            topped_up=sum(int(c.amount) for c in answer.contributions if c.source == "topup"),
            days=days,
        )

    @property
    def unlimited(self) -> bool:
        return self.limit is None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def percent(self) -> float | None:
        """Used, in per cent of the limit; None without a limit to compare with (unlimited, 0)."""
        if not self.limit:
            return None
        return self.used * 100 / self.limit

    @property
    def level(self) -> str:
        """ "reached" at or past the limit (a soft limit lets usage pass it; a limit of 0 is
        reached at once), "near" from NEAR per cent of it, "" otherwise or without a limit."""
        if self.limit is None:
            return ""
        if self.used >= self.limit:
            return "reached"
        return "near" if self.used * 100 >= NEAR * self.limit else ""


def period_days(start: datetime, end: datetime) -> list[date]:
    """The days (UTC) a period [start, end) touches: a billing cycle that starts at 10:00 has
    its first and last day in part."""
    first, last = start.astimezone(UTC).date(), (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def current_usage(
    customer_id: int, answers: Iterable[Answer], feature_ids: Mapping[str, int]
) -> list[PeriodUsage]:
    """The customer's metered features in their current periods, by key: each one it has, and
    any it used this period before losing it (a revoke). One query (none when no answer is
    metered): the customer's rows since the earliest current period began, summed per feature,
    period and day over the (customer, feature, period) index; rows of other periods are left
    out here, by their period's start."""
    metered = [
        answer
        for answer in answers
        if answer.kind == METERED and answer.period_start is not None and answer.feature_key in feature_ids
    ]
    if not metered:
        return []
    current = {(feature_ids[answer.feature_key], answer.period_start) for answer in metered}
    by_day: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for feature_id, start, day, total in (
        Consumption.objects.filter(
            customer_id=customer_id, period_start__gte=min(start for _feature, start in current)
        )
        .annotate(day=TruncDate("happened_at", tzinfo=UTC))
        .values("feature_id", "period_start", "day")
        .annotate(total=Sum("quantity"))
        .order_by()
        .values_list("feature_id", "period_start", "day", "total")
    ):
        if (feature_id, start) in current:
            by_day[feature_id][day] += total
    usage = []
    for answer in sorted(metered, key=lambda answer: answer.feature_key):
        feature_id = feature_ids[answer.feature_key]
        days = by_day.get(feature_id, {})
        used = sum(days.values())
        if answer.granted or used:
            usage.append(PeriodUsage.of(answer, feature_id, used, days))
    return usage


def period_totals(
    *, first_customer_id: int, last_customer_id: int, since: datetime
) -> dict[tuple[int, int, datetime], int]:
    """Usage per (customer id, feature id, period start) of the customers whose ids lie in
    [first, last], in periods starting at `since` or later: one query, summed by the database,
    so a batch of customers costs one row per metered feature used, whatever the number of
    consumptions."""
    rows = (
        Consumption.objects.filter(
            customer_id__gte=first_customer_id, customer_id__lte=last_customer_id, period_start__gte=since
        )
        .values("customer_id", "feature_id", "period_start")
        .annotate(total=Sum("quantity"))
        .order_by()
        .values_list("customer_id", "feature_id", "period_start", "total")
    )
    return {(customer_id, feature_id, start): total for customer_id, feature_id, start, total in rows}
