"""Reads for the dashboard and a feature's Reporting tab. Feature usage comes from the
precomputed snapshot (never from resolving customers); the rest are indexed range queries on
their own tables. Each function is one query, whatever the number of customers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum

from api.models import CheckCount
from audit.models import ScheduledChange
from catalog.models import Entitlement, Feature, Item, Tag
from reporting.filters import NO_PLAN, ReportFilters
from reporting.models import FeatureUsage, LimitUsage, UsageSnapshot
from subscriptions.models import Override, Subscription

HAVE_KINDS = ("plan", "addon", "segment", "override")  # sources that give a feature


@dataclass(frozen=True, slots=True)
class SnapshotState:
    """The snapshot the figures come from, and the latest refresh if it did not complete."""

    current: UsageSnapshot | None
    latest: UsageSnapshot | None  # newer than `current`: running or failed

    @property
    def failed(self) -> UsageSnapshot | None:
        return self.latest if self.latest and self.latest.status == UsageSnapshot.Status.FAILED else None

    @property
    def running(self) -> UsageSnapshot | None:
        return self.latest if self.latest and self.latest.status == UsageSnapshot.Status.RUNNING else None


@dataclass(slots=True)
class FeatureCounts:
    """Customers of one feature: those who have it, by source kind, and those who do not."""

    have: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HAVE_KINDS, 0))
    have_not: int = 0

    @property
    def total_have(self) -> int:
        return sum(self.have.values())

    @property
    def customers(self) -> int:
        return self.total_have + self.have_not


def snapshot_state() -> SnapshotState:
    """The latest complete snapshot, and any newer refresh (one query: old snapshots are
    removed when a new one completes, so there are only a few rows)."""
    recent = list(UsageSnapshot.objects.order_by("-computed_at", "-id")[:5])
    current = next((s for s in recent if s.status == UsageSnapshot.Status.COMPLETE), None)
    latest = recent[0] if recent and recent[0] is not current else None
    return SnapshotState(current=current, latest=latest)


def usage_rows(snapshot: UsageSnapshot, filters: ReportFilters) -> QuerySet[FeatureUsage]:
    """The snapshot's rows for the customers and features the filters select."""
    return _selected(FeatureUsage.objects.filter(snapshot=snapshot), filters)


def _selected(rows: QuerySet, filters: ReportFilters) -> QuerySet:
    """The rows (of a snapshot's per-customer tables) of the plan, market, feature and tag the
    filters name."""
    if filters.plan == NO_PLAN:
        rows = rows.filter(plans="")
    elif filters.plan:
        rows = rows.filter(plans__contains=f",{filters.plan},")
    if filters.country:
        rows = rows.filter(country=filters.country)
    if filters.feature:
        rows = rows.filter(feature_key=filters.feature)
    if filters.tag:
        rows = rows.filter(feature_key__in=Feature.objects.filter(tags__key=filters.tag).values("key"))
    return rows


def feature_counts(snapshot: UsageSnapshot, filters: ReportFilters) -> dict[str, FeatureCounts]:
    """Per feature key: customers who have it by source kind, and who do not."""
    counts: dict[str, FeatureCounts] = defaultdict(FeatureCounts)
    for row in (
        usage_rows(snapshot, filters)
        .values("feature_key", "enabled", "source_kind")
        .annotate(customers=Sum("customers"))
        .order_by()
    ):
        entry = counts[row["feature_key"]]
        if row["enabled"] and row["source_kind"] in HAVE_KINDS:
            entry.have[row["source_kind"]] += row["customers"]
        else:
            entry.have_not += row["customers"]
    return dict(counts)


def usage_by_source(snapshot: UsageSnapshot, filters: ReportFilters) -> list[dict[str, Any]]:
    """Customers by (enabled, source kind, source key), largest first: which plan, add-on or
    segment gives a feature, and why the others do not have it."""
    return [
        dict(row)
        for row in usage_rows(snapshot, filters)
        .values("enabled", "source_kind", "source_key")
        .annotate(customers=Sum("customers"))
        .order_by("-enabled", "-customers", "source_kind", "source_key")
    ]


def limits_near(snapshot: UsageSnapshot, filters: ReportFilters) -> QuerySet[LimitUsage]:
    """The snapshot's customers at or near a metered limit that the filters select, the
    fullest first (the snapshot's index gives that order; ties by feature, then customer)."""
    rows = _selected(LimitUsage.objects.filter(snapshot=snapshot), filters)
    return rows.select_related("customer").order_by("-share", "feature_key", "customer_id")


def reported_features(filters: ReportFilters) -> list[tuple[int, str, str]]:
    """(id, key, name) of the active features the tag and feature filters select."""
    features = Feature.objects.filter(status=Feature.Status.ACTIVE)
    if filters.tag:
        features = features.filter(tags__key=filters.tag)
    if filters.feature:
        features = features.filter(key=filters.feature)
    return list(features.order_by("key").values_list("pk", "key", "name"))


def checks_by_day(filters: ReportFilters, *, first: date, last: date) -> dict[str, dict[date, int]]:
    """Checks per feature key and day from `first` to `last` (the API's daily counts).
    Checks are not counted per customer: only the tag and feature filters apply."""
    counts = CheckCount.objects.filter(day__gte=first, day__lte=last)
    if filters.feature:
        counts = counts.filter(feature_key=filters.feature)
    if filters.tag:
        counts = counts.filter(feature_key__in=Feature.objects.filter(tags__key=filters.tag).values("key"))
    by_feature: dict[str, dict[date, int]] = defaultdict(dict)
    for feature_key, day, count in counts.order_by().values_list("feature_key", "day", "count"):
        by_feature[feature_key][day] = count
    return dict(by_feature)


def overrides_ending(filters: ReportFilters, *, now: datetime, within: timedelta) -> QuerySet[Override]:
    """Overrides whose window closes between now and `within` from now, soonest first."""
    overrides = Override.objects.filter(valid_until__gte=now, valid_until__lt=now + within)
    if filters.plan == NO_PLAN:
        return overrides.none()
    if filters.plan:
        overrides = overrides.filter(subscription__plan__key=filters.plan)
    if filters.country:
        overrides = overrides.filter(subscription__customer__country=filters.country)
    if filters.tag:
        overrides = overrides.filter(feature__tags__key=filters.tag)
    if filters.feature:
        overrides = overrides.filter(feature__key=filters.feature)
    return overrides.select_related("subscription__customer", "subscription__plan", "feature").order_by(
        "valid_until", "pk"
    )


def trials_ending(filters: ReportFilters, *, now: datetime, within: timedelta) -> QuerySet[Subscription]:
    """Trials that end between now and `within` from now, soonest first. With a feature
    filter: trials of plans that give that feature (its holders about to lose it)."""
    trials = Subscription.objects.filter(
        status=Subscription.Status.TRIALING, trial_ends_at__gte=now, trial_ends_at__lt=now + within
    )
    if filters.plan == NO_PLAN:
        return trials.none()
    if filters.plan:
        trials = trials.filter(plan__key=filters.plan)
    if filters.country:
        trials = trials.filter(customer__country=filters.country)
    if filters.feature:
        trials = trials.filter(
            Exists(Entitlement.objects.filter(item=OuterRef("plan"), feature__key=filters.feature))
        )
    return trials.select_related("customer", "plan").order_by("trial_ends_at", "pk")


def scheduled_changes_pending(filters: ReportFilters) -> QuerySet[ScheduledChange]:
    """Scheduled changes still to apply, soonest first. With a feature or plan filter: those
    whose request names it (in its path, or as the body's "feature" or "plan")."""
    changes = ScheduledChange.objects.filter(status=ScheduledChange.Status.PENDING)
    if filters.feature:
        key = filters.feature
        changes = changes.filter(
            Q(path__endswith=f"/features/{key}")
            | Q(path__contains=f"/features/{key}/")
            | Q(path__endswith=f"/entitlements/{key}")
            | Q(body__feature=key)
        )
    if filters.plan and filters.plan != NO_PLAN:
        key = filters.plan
        changes = changes.filter(
            Q(path__endswith=f"/items/{key}") | Q(path__contains=f"/items/{key}/") | Q(body__plan=key)
        )
    return changes.select_related("created_by").order_by("effective_at", "pk")


def plan_choices() -> list[tuple[str, str]]:
    """(key, name) of every plan, for the plan filter (legacy plans still have subscribers)."""
    return list(Item.objects.filter(kind=Item.Kind.PLAN).order_by("rank", "key").values_list("key", "name"))


def tag_choices() -> list[tuple[str, str]]:
    return list(Tag.objects.order_by("key").values_list("key", "name"))
