"""The dashboard's tables, each built once for both the page and its CSV export, so an export
has the page's columns and follows the page's filters. A table knows which permission it
needs and which filters apply to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Window
from django.urls import reverse
from django.utils import timezone

from reporting import selectors
from reporting.filters import ReportFilters
from reporting.models import FeatureUsage
from reporting.selectors import HAVE_KINDS, FeatureCounts, SnapshotState
from usage.selectors import NEAR

WITHIN = timedelta(days=7)  # "ending soon": overrides and trials
CHECK_DAYS = 30
PAGE_ROWS = 20  # rows of a list shown on the page; its CSV has them all
REPORTING_TAB = "dataset-reporting"  # the Reporting tab of a feature's page, as a URL fragment

KIND_TITLES = {"plan": "Plan", "addon": "Add-on", "segment": "Segment", "override": "Override"}
FILTER_TITLES = {"plan": "plan", "country": "market", "tag": "tag", "feature": "feature"}


@dataclass(frozen=True, slots=True)
class Cell:
    """One value: `value` goes to the CSV, `text` (or the value) to the page, with a link, or
    drawn as a label of unfold's (`mark`: "warning", "danger")."""

    value: object
    text: str | None = None
    href: str | None = None
    numeric: bool = False
    mark: str = ""

    @property
    def display(self) -> str:
        if self.text is not None:
            return self.text
        if isinstance(self.value, datetime):
            return timezone.localtime(self.value).strftime("%Y-%m-%d %H:%M %Z")
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        if isinstance(self.value, int):
            return f"{self.value:,}"
        return "" if self.value is None else str(self.value)

    @property
    def csv(self) -> object:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, datetime | date):
            return self.value.isoformat()
        return "" if self.value is None else self.value


@dataclass(frozen=True, slots=True)
class Row:
    cells: list[Cell]
    key: str = ""  # e.g. the feature key, for data-row attributes


@dataclass(slots=True)
class Table:
    key: str
    title: str
    headers: list[str]
    rows: list[Row]
    total: int  # rows in all, whether or not all are shown
    empty: str
    applies: tuple[str, ...]  # the filters that narrow this table
    filters: ReportFilters = field(default_factory=ReportFilters)
    note: str = ""

    @property
    def columns(self) -> list[tuple[str, bool]]:
        """(header, numeric) per column: numbers are right-aligned, headers with them."""
        first = self.rows[0].cells if self.rows else []
        return [
            (header, index < len(first) and first[index].numeric) for index, header in enumerate(self.headers)
        ]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)

    @property
    def ignored_filters(self) -> list[str]:
        """Filters set on the page that do not apply to this table (said next to it)."""
        return [
            FILTER_TITLES[name]
            for name in FILTER_TITLES
            if getattr(self.filters, name) and name not in self.applies
        ]


@dataclass(frozen=True, slots=True)
class Scope:
    """What every table is built from: the filters, the instant, the snapshot."""

    filters: ReportFilters
    now: datetime
    snapshot: SnapshotState
    limit: int | None = PAGE_ROWS  # None: every row (CSV)

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def first_day(self) -> date:
        return self.today - timedelta(days=CHECK_DAYS - 1)


def _admin(name: str, *args: object) -> str:
    return reverse(f"admin:{name}", args=args)


def _limited(queryset, scope: Scope) -> tuple[list, int]:
    """The rows to show and how many there are in all, in one query: each row carries the
    count of all rows (a window over the whole result, computed before the LIMIT)."""
    if scope.limit is None:
        rows = list(queryset)
        return rows, len(rows)
    rows = list(queryset.annotate(rows_in_all=Window(Count("pk")))[: scope.limit])
    return rows, rows[0].rows_in_all if rows else 0


# --- feature usage (from the snapshot) -----------------------------------------------------------

# The features the filters select, (id, key, name), and their counts by key.
FeatureUsageFigures = tuple[list[tuple[int, str, str]], dict[str, FeatureCounts]]


def feature_usage_figures(scope: Scope) -> FeatureUsageFigures:
    """Two queries: the features, and their counts summed from the snapshot."""
    current = scope.snapshot.current
    counts = selectors.feature_counts(current, scope.filters) if current else {}
    return selectors.reported_features(scope.filters), counts


def feature_usage_table(scope: Scope, usage: FeatureUsageFigures | None = None) -> Table:
    """Per feature: customers who have it, through which kind of source, and who do not."""
    features, counts = usage or feature_usage_figures(scope)
    rows = []
    for pk, key, name in features:
        entry = counts.get(key)
        head = [Cell(key, href=_admin("catalog_feature_change", pk) + f"#{REPORTING_TAB}"), Cell(name)]
        if entry is None:
            # A feature added since the snapshot: not counted yet (not "nobody has it").
            rows.append(Row([*head, *(Cell(None, text="—", numeric=True) for _ in range(7))], key=key))
            continue
        rows.append(
            Row(
                [
                    *head,
                    Cell(entry.total_have, numeric=True),
                    *(Cell(entry.have[kind], numeric=True) for kind in HAVE_KINDS),
                    Cell(entry.have_not, numeric=True),
                    Cell(entry.customers, numeric=True),
                ],
                key=key,
            )
        )
    return Table(
        key="feature-usage",
        title="Who has each feature",
        headers=[
            "Feature",
            "Name",
            "Customers with it",
            *(f"via {KIND_TITLES[kind].lower()}" for kind in HAVE_KINDS),
            "Without it",
            "Customers",
        ],
        rows=rows,
        total=len(rows),
        empty="No active feature matches the filters.",
        applies=("plan", "country", "tag", "feature"),
        filters=scope.filters,
    )


def usage_by_source_table(scope: Scope, grouped: list[dict[str, Any]] | None = None) -> Table:
    """Customers by the source that decides their answer: which plan, add-on or segment
    gives the feature, and why the others do not have it."""
    if grouped is None:
        current = scope.snapshot.current
        grouped = selectors.usage_by_source(current, scope.filters) if current else []
    titles = dict(FeatureUsage.SourceKind.choices)
    rows = [
        Row(
            [
                Cell(row["enabled"], text="has it" if row["enabled"] else "does not"),
                Cell(row["source_kind"], text=titles.get(row["source_kind"], row["source_kind"])),
                Cell(row["source_key"]),
                Cell(row["customers"], numeric=True),
            ],
            key=f"{(row['enabled'] and 'on') or 'off'}:{row['source_kind']}:{row['source_key']}",
        )
        for row in grouped
    ]
    return Table(
        key="usage-by-source",
        title="Customers by source",
        headers=["Answer", "Source", "Plan, add-on or segment", "Customers"],
        rows=rows,
        total=len(rows),
        empty="No customer matches the filters.",
        applies=("plan", "country", "tag", "feature"),
        filters=scope.filters,
        note="" if scope.filters.feature else "Summed over every feature shown.",
    )


# --- checks (from the API's daily counts) --------------------------------------------------------


def _days(scope: Scope) -> list[date]:
    return [scope.first_day + timedelta(days=n) for n in range(CHECK_DAYS)]


def checks_table(scope: Scope, by_day: dict[str, dict[date, int]] | None = None) -> Table:
    """Per feature: checks over the last 30 days, the last 7, and the busiest day."""
    by_day = (
        selectors.checks_by_day(scope.filters, first=scope.first_day, last=scope.today)
        if by_day is None
        else by_day
    )
    week = scope.today - timedelta(days=6)
    rows = []
    for key, days in sorted(by_day.items(), key=lambda item: (-sum(item[1].values()), item[0])):
        busiest = max(days.items(), key=lambda item: (item[1], item[0]))
        rows.append(
            Row(
                [
                    Cell(key),
                    Cell(sum(days.values()), numeric=True),
                    Cell(sum(n for day, n in days.items() if day >= week), numeric=True),
                    Cell(busiest[0], text=f"{busiest[0]:%Y-%m-%d} ({busiest[1]:,})"),
                ],
                key=key,
            )
        )
    return Table(
        key="checks",
        title="Checks by applications",
        headers=["Feature", f"Checks, last {CHECK_DAYS} days", "Last 7 days", "Busiest day"],
        rows=rows,
        total=len(rows),
        empty=f"No check was counted in the last {CHECK_DAYS} days.",
        applies=("tag", "feature"),
        filters=scope.filters,
    )


def checks_by_day_table(scope: Scope, by_day: dict[str, dict[date, int]] | None = None) -> Table:
    """The checks chart's data: one row per feature and day (days without checks: 0)."""
    by_day = (
        selectors.checks_by_day(scope.filters, first=scope.first_day, last=scope.today)
        if by_day is None
        else by_day
    )
    rows = [
        Row([Cell(key), Cell(day), Cell(days.get(day, 0), numeric=True)], key=key)
        for key, days in sorted(by_day.items())
        for day in _days(scope)
    ]
    return Table(
        key="checks-by-day",
        title="Checks per feature and day",
        headers=["Feature", "Day", "Checks"],
        rows=rows,
        total=len(rows),
        empty="No check was counted.",
        applies=("tag", "feature"),
        filters=scope.filters,
    )


# --- what is about to change ---------------------------------------------------------------------


def overrides_ending_table(scope: Scope) -> Table:
    overrides, total = _limited(
        selectors.overrides_ending(scope.filters, now=scope.now, within=WITHIN), scope
    )
    rows = []
    for override in overrides:
        subscription, customer = override.subscription, override.subscription.customer
        value = override.in_words
        rows.append(
            Row(
                [
                    Cell(override.valid_until),
                    Cell(customer.external_id, href=_admin("subscriptions_customer_change", customer.pk)),
                    Cell(str(customer.country or "")),
                    Cell(
                        subscription.external_id,
                        href=_admin("subscriptions_subscription_change", subscription.pk),
                    ),
                    Cell(subscription.plan.key),
                    Cell(override.feature.key),
                    Cell(value, href=_admin("subscriptions_override_change", override.pk)),
                ],
                key=str(override.pk),
            )
        )
    return Table(
        key="overrides-ending",
        title="Overrides ending in the next 7 days",
        headers=["Ends", "Customer", "Market", "Subscription", "Plan", "Feature", "Override"],
        rows=rows,
        total=total,
        empty="No override ends in the next 7 days.",
        applies=("plan", "country", "tag", "feature"),
        filters=scope.filters,
    )


def trials_ending_table(scope: Scope) -> Table:
    trials, total = _limited(selectors.trials_ending(scope.filters, now=scope.now, within=WITHIN), scope)
    rows = [
        Row(
            [
                Cell(trial.trial_ends_at),
                Cell(
                    trial.customer.external_id,
                    href=_admin("subscriptions_customer_change", trial.customer.pk),
                ),
                Cell(str(trial.customer.country or "")),
                Cell(trial.external_id, href=_admin("subscriptions_subscription_change", trial.pk)),
                Cell(trial.plan.key),
            ],
            key=str(trial.pk),
        )
        for trial in trials
    ]
    return Table(
        key="trials-ending",
        title="Trials ending in the next 7 days",
        headers=["Ends", "Customer", "Market", "Subscription", "Plan"],
        rows=rows,
        total=total,
        empty="No trial ends in the next 7 days.",
        applies=("plan", "country", "feature"),
        filters=scope.filters,
        note="With a feature: trials of plans that give it." if scope.filters.feature else "",
    )


def scheduled_changes_table(scope: Scope) -> Table:
    changes, total = _limited(selectors.scheduled_changes_pending(scope.filters), scope)
    rows = [
        Row(
            [
                Cell(change.effective_at, href=_admin("audit_scheduledchange_change", change.pk)),
                Cell(change.method),
                Cell(change.path),
                Cell(change.reason),
                Cell(change.created_by.get_username()),
            ],
            key=str(change.pk),
        )
        for change in changes
    ]
    return Table(
        key="scheduled-changes",
        title="Scheduled changes coming up",
        headers=["Effective", "Method", "Path", "Reason", "Scheduled by"],
        rows=rows,
        total=total,
        empty="No change is scheduled.",
        applies=("plan", "feature"),
        filters=scope.filters,
        note="Those whose request names the plan or feature."
        if scope.filters.plan or scope.filters.feature
        else "",
    )


# --- usage limits (from the snapshot) ------------------------------------------------------------


def limits_table(scope: Scope) -> Table:
    """Customers at NEAR per cent or more of a metered limit in their current period, the
    fullest first, as the last refresh counted them (reporting.services)."""
    current = scope.snapshot.current
    limits, total = _limited(selectors.limits_near(current, scope.filters), scope) if current else ([], 0)
    rows = []
    for row in limits:
        # Whole numbers, rounded down: 99.6 % is not "100 %" while something remains.
        percent = row.used * 100 // row.limit if row.limit else row.used * 100
        if row.used > row.limit:
            state = Cell("over", text="over the limit", mark="danger")
        elif row.used == row.limit:
            state = Cell("reached", text="limit reached", mark="danger")
        else:
            state = Cell("near", text="near the limit", mark="warning")
        rows.append(
            Row(
                [
                    Cell(
                        row.customer.external_id,
                        href=_admin("subscriptions_customer_change", row.customer_id),
                    ),
                    Cell(row.feature_key),
                    Cell(row.used, numeric=True),
                    Cell(row.limit, numeric=True),
                    Cell(percent, text=f"{percent:,} %", numeric=True),
                    state,
                    Cell("hard" if row.hard else "soft"),
                    Cell(row.resets_at),
                ],
                key=f"{row.customer.external_id}:{row.feature_key}",
            )
        )
    return Table(
        key="limits",
        title="Customers at or near a usage limit",
        headers=["Customer", "Feature", "Used", "Limit", "Used %", "State", "Limit type", "Resets"],
        rows=rows,
        total=total,
        empty=f"No customer has used {NEAR} % or more of a metered limit this period."
        if current
        else "Not counted yet: the figures are computed in the background.",
        applies=("plan", "country", "tag", "feature"),
        filters=scope.filters,
        note=f"Metered limits used {NEAR} % or more in the current period, top-ups included, as counted "
        "with the figures above; a soft limit lets usage pass 100 %.",
    )


@dataclass(frozen=True, slots=True)
class TableSpec:
    build: Callable[[Scope], Table]
    permission: str


TABLES: dict[str, TableSpec] = {
    "feature-usage": TableSpec(feature_usage_table, "catalog.view_feature"),
    "usage-by-source": TableSpec(usage_by_source_table, "catalog.view_feature"),
    "checks": TableSpec(checks_table, "catalog.view_feature"),
    "checks-by-day": TableSpec(checks_by_day_table, "catalog.view_feature"),
    "overrides-ending": TableSpec(overrides_ending_table, "subscriptions.view_override"),
    "trials-ending": TableSpec(trials_ending_table, "subscriptions.view_subscription"),
    "scheduled-changes": TableSpec(scheduled_changes_table, "audit.view_scheduledchange"),
    "limits": TableSpec(limits_table, "usage.view_consumption"),
}
