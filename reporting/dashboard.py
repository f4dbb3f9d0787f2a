"""The admin's front page (the dashboard) and a feature's Reporting tab: filters, freshness,
charts and tables, each shown only to those who may see what it lists.

Feature usage, and the customers at or near a metered limit, come from the precomputed
snapshot (`reporting.services`); nothing here resolves a customer or sums usage, so the page
costs the same handful of queries at any scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django_countries import countries

from catalog.models import Feature
from reporting import selectors
from reporting.filters import NO_PLAN, ReportFilters
from reporting.forms import FilterForm
from reporting.models import UsageSnapshot
from reporting.selectors import HAVE_KINDS, FeatureCounts, SnapshotState
from reporting.tables import (
    CHECK_DAYS,
    KIND_TITLES,
    TABLES,
    Scope,
    checks_table,
    feature_usage_figures,
    feature_usage_table,
    limits_table,
    overrides_ending_table,
    scheduled_changes_table,
    trials_ending_table,
    usage_by_source_table,
)

KIND_COLORS = {"plan": "#7c3aed", "addon": "#0ea5e9", "segment": "#10b981", "override": "#f59e0b"}
OFF_COLOR = "#9ca3af"
LINE_COLORS = ["#7c3aed", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#ec4899", "#84cc16"]
OTHER_COLOR = "#9ca3af"
LINES = 6  # features drawn one by one in the checks chart; the rest summed into one line
CHART_FEATURES = 25  # bars in the usage chart, at most
_AXIS = {"ticks": {"color": "#9ca3af", "precision": 0}, "grid": {"color": "rgba(156, 163, 175, 0.15)"}}
_LEGEND = {
    "display": True,
    "position": "top",
    "align": "end",
    "labels": {"boxWidth": 8, "boxHeight": 8, "usePointStyle": True, "color": "#9ca3af"},
}


def refresh_interval() -> float:
    """Seconds between two refreshes by beat (config.settings.celery)."""
    entry = getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get("refresh-feature-usage", {})
    return float(entry.get("schedule", 300.0))


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old the figures are, said plainly ("computed 3 minutes ago")."""

    state: SnapshotState
    now: datetime

    @property
    def snapshot(self) -> UsageSnapshot | None:
        return self.state.current

    @property
    def age(self) -> str:
        """ "3 minutes ago", or "just now" within the first minute."""
        if self.snapshot is None:
            return ""
        if self.now - self.snapshot.computed_at < timedelta(minutes=1):
            return "just now"
        return f"{timesince(self.snapshot.computed_at, self.now, depth=1)} ago"

    @property
    def customers(self) -> str:
        return f"{self.snapshot.customers:,}" if self.snapshot else ""

    @property
    def stale(self) -> bool:
        """Older than three refresh intervals: beat or the worker is probably not running."""
        if self.snapshot is None:
            return False
        return self.now - self.snapshot.computed_at > timedelta(seconds=3 * refresh_interval() + 60)

    @property
    def every(self) -> str:
        minutes = refresh_interval() / 60
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}"


def build(
    request: HttpRequest, *, feature: Feature | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the dashboard (or, with `feature`, its Reporting tab) shows to this user."""
    now = now or timezone.now()
    filters = ReportFilters.from_query(request.GET)
    if feature is not None:
        filters = replace(filters, feature=feature.key, tag="")
    user = request.user
    may = {key: user.has_perm(spec.permission) for key, spec in TABLES.items()}
    may_features = may["feature-usage"]
    # Usage limits are shown only where they exist: on the dashboard and a metered feature's tab.
    may_limits = may["limits"] and (feature is None or feature.is_metered)
    state = selectors.snapshot_state() if may_features or may_limits else SnapshotState(None, None)
    scope = Scope(filters=filters, now=now, snapshot=state)
    context: dict[str, Any] = {
        "filters": filters,
        "feature": feature,
        "may_features": may_features,
        "freshness": Freshness(state, now),
        "csv": {key.replace("-", "_"): export_url(key, filters) for key in TABLES},
    }
    if may_features:
        by_day = selectors.checks_by_day(filters, first=scope.first_day, last=scope.today)
        context["checks_chart"] = checks_chart(scope, by_day)
        if feature is None:
            figures = feature_usage_figures(scope)
            context["usage"] = feature_usage_table(scope, figures)
            context["usage_chart"] = usage_chart(*figures)
            context["checks"] = checks_table(scope, by_day)
        else:
            grouped = selectors.usage_by_source(state.current, filters) if state.current else []
            context["sources"] = usage_by_source_table(scope, grouped)
            context["sources_chart"] = sources_chart(grouped)
            context["feature_totals"] = feature_totals(grouped)
    context["overrides"] = overrides_ending_table(scope) if may["overrides-ending"] else None
    context["trials"] = trials_ending_table(scope) if may["trials-ending"] else None
    context["scheduled"] = scheduled_changes_table(scope) if may["scheduled-changes"] else None
    context["limits"] = limits_table(scope) if may_limits else None
    if may_features:
        context["form"] = FilterForm(filters, filter_choices(state.current, with_tags=feature is None))
    if feature is not None:
        # The tab's filter form reloads the tab alone (htmx), from this address.
        context["tab_url"] = reverse("admin:reporting_feature", args=[feature.pk])
    return context


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """unfold's DASHBOARD_CALLBACK: the front page's figures under "reporting"."""
    context["reporting"] = build(request)
    return context


def export_url(key: str, filters: ReportFilters) -> str:
    query = filters.query()
    return reverse("admin:reporting_export", args=[key]) + (f"?{query}" if query else "")


def filter_choices(snapshot: UsageSnapshot | None, *, with_tags: bool) -> dict[str, list[tuple[str, str]]]:
    """The values each filter offers: plans, the markets present in the snapshot, tags."""
    markets = [
        (code, f"{countries.name(code) or code} ({code})")
        for code in (snapshot.countries if snapshot else [])
    ]
    return {
        "plans": [*selectors.plan_choices(), (NO_PLAN, "No live plan")],
        "countries": markets,
        "tags": selectors.tag_choices() if with_tags else [],
    }


def feature_totals(grouped: list[dict[str, Any]]) -> dict[str, int]:
    """Of the customers the filters select, how many have the feature and how many do not."""
    have = sum(row["customers"] for row in grouped if row["enabled"])
    everyone = sum(row["customers"] for row in grouped)
    return {"have": have, "have_not": everyone - have, "customers": everyone}


# --- charts (Chart.js, drawn by unfold's own script) ---------------------------------------------


def usage_chart(
    features: list[tuple[int, str, str]], counts: dict[str, FeatureCounts]
) -> dict[str, Any] | None:
    """Stacked bars: per feature, customers who have it, coloured by the kind of source; the
    CHART_FEATURES most held when there are more (the table lists them all)."""
    counted = [key for _pk, key, _name in features if key in counts]
    if not counted:
        return None
    if len(counted) > CHART_FEATURES:
        top = set(sorted(counted, key=lambda key: -counts[key].total_have)[:CHART_FEATURES])
        counted = [key for key in counted if key in top]
    data = {
        "labels": counted,
        "datasets": [
            {
                "label": KIND_TITLES[kind],
                "data": [counts[key].have[kind] for key in counted],
                "backgroundColor": KIND_COLORS[kind],
                "borderRadius": 3,
                "maxBarThickness": 18,
            }
            for kind in HAVE_KINDS
        ],
    }
    options = {
        "indexAxis": "y",
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {"legend": _LEGEND, "tooltip": {"enabled": True}},
        "scales": {"x": {**_AXIS, "stacked": True, "beginAtZero": True}, "y": {**_AXIS, "stacked": True}},
    }
    chart = _chart(data, options, height=max(160, 30 * len(counted) + 70))
    chart["note"] = (
        f"The {CHART_FEATURES} features most held; the table lists all."
        if len(features) > CHART_FEATURES
        else ""
    )
    return chart


def sources_chart(grouped: list[dict[str, Any]]) -> dict[str, str] | None:
    """Bars: customers per source of the feature's answer (those without it in grey)."""
    if not grouped:
        return None
    labels, values, colors = [], [], []
    for row in grouped:
        kind, key = row["source_kind"], row["source_key"]
        labels.append(f"{kind}:{key}" if key else (kind if row["enabled"] else f"off: {kind}"))
        values.append(row["customers"])
        colors.append(KIND_COLORS.get(kind, OFF_COLOR) if row["enabled"] else OFF_COLOR)
    data = {
        "labels": labels,
        "datasets": [{"label": "Customers", "data": values, "backgroundColor": colors, "borderRadius": 3}],
    }
    options = {
        "indexAxis": "y",
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {"legend": {"display": False}, "tooltip": {"enabled": True}},
        "scales": {"x": {**_AXIS, "beginAtZero": True}, "y": _AXIS},
    }
    return _chart(data, options, height=max(140, 30 * len(labels) + 50))


def checks_chart(scope: Scope, by_day: dict) -> dict[str, str] | None:
    """Lines: checks per day over the last 30 days, for the most checked features (the
    others summed into one line)."""
    if not by_day:
        return None
    days = [scope.first_day + timedelta(days=n) for n in range(CHECK_DAYS)]
    ranked = sorted(by_day, key=lambda key: (-sum(by_day[key].values()), key))
    shown, rest = ranked[:LINES], ranked[LINES:]
    if len(rest) == 1:
        shown, rest = ranked, []
    datasets = [
        _line(key, [by_day[key].get(day, 0) for day in days], LINE_COLORS[i]) for i, key in enumerate(shown)
    ]
    if rest:
        summed = [sum(by_day[key].get(day, 0) for key in rest) for day in days]
        datasets.append(_line(f"{len(rest)} other features", summed, OTHER_COLOR))
    data = {"labels": [f"{day:%m-%d}" for day in days], "datasets": datasets}
    options = {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "interaction": {"mode": "index", "intersect": False},
        "plugins": {"legend": _LEGEND, "tooltip": {"enabled": True}},
        "scales": {"x": _AXIS, "y": {**_AXIS, "beginAtZero": True}},
    }
    return _chart(data, options, height=280)


def _line(label: str, values: list[int], color: str) -> dict[str, Any]:
    return {
        "label": label,
        "data": values,
        "borderColor": color,
        "backgroundColor": color,
        "borderWidth": 2,
        "pointRadius": 0,
        "tension": 0.25,
    }


def _chart(data: dict, options: dict, *, height: int) -> dict[str, Any]:
    """What unfold's chart components take: the data and options as JSON, and a height."""
    return {"data": json.dumps(data), "options": json.dumps(options), "height": str(height)}
