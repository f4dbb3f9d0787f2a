"""Writes of reporting: recomputing the feature usage snapshot the dashboard reads.

The snapshot is derived data (plain tables, no history): every customer is resolved at one
instant, in batches, the answers are counted in memory by (feature, on/off, source, plans,
country), and the counts replace the previous snapshot in one transaction. The dashboard
never sees a half-written snapshot, and never resolves a customer itself.

The same pass finds the customers at or near a metered limit. A limit is a resolved answer
(plans, add-ons, overrides, segments and this period's top-ups), which the dashboard cannot
afford to compute per request for every customer; the refresh has every answer in hand
anyway. So each batch adds one query, the batch's consumptions summed by (customer, feature,
period) in the database (`usage.selectors.period_totals`), and only the customers at NEAR
per cent or more get a row (`LimitUsage`). The table is as fresh as the rest of the page
(refreshed every few minutes) and costs one indexed query to show.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from catalog.selectors import load_catalog_specs
from reporting.models import FeatureUsage, LimitUsage, UsageSnapshot
from reporting.resolving import ResolvedCustomer, resolved_customers
from subscriptions.resolution import METERED
from usage.selectors import NEAR, period_totals

log = logging.getLogger(__name__)

LOCK_KEY = "reporting:usage-snapshot-refresh"
# Longer than a refresh of the largest customer base takes; a worker that died holding the
# lock delays the next refresh by at most this long.
LOCK_SECONDS = 30 * 60
BATCH_SIZE = 2000

UsageKey = tuple[str, bool, str, str, str, str]  # feature, enabled, kind, key, plans, country


@dataclass(slots=True)
class Counted:
    """What one pass over every customer found."""

    counts: Counter[UsageKey] = field(default_factory=Counter)
    customers: int = 0
    batches: int = 0
    countries: set[str] = field(default_factory=set)
    limits: list[LimitUsage] = field(default_factory=list)  # not saved: no snapshot yet


def usage_snapshot_refresh(
    *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> UsageSnapshot | None:
    """Resolve every customer at `now` and make the counts the current snapshot; None when
    another refresh is running (two at once would only do the work twice)."""
    if not cache.add(LOCK_KEY, "1", timeout=LOCK_SECONDS):
        log.info("Feature usage refresh skipped: another one is running.")
        return None
    try:
        return _refresh(now or timezone.now(), batch_size)
    finally:
        cache.delete(LOCK_KEY)


def _refresh(now: datetime, batch_size: int) -> UsageSnapshot:
    snapshot = UsageSnapshot.objects.create(computed_at=now, status=UsageSnapshot.Status.RUNNING)
    try:
        counted = count_usage(now=now, batch_size=batch_size)
        counts, customers, batches = counted.counts, counted.customers, counted.batches
        with transaction.atomic():
            FeatureUsage.objects.bulk_create(
                (
                    FeatureUsage(
                        snapshot=snapshot,
                        feature_key=feature_key,
                        enabled=enabled,
                        source_kind=kind,
                        source_key=key,
                        plans=plans,
                        country=country,
                        customers=n,
                    )
                    for (feature_key, enabled, kind, key, plans, country), n in counts.items()
                ),
                batch_size=5000,
            )
            for limit in counted.limits:
                limit.snapshot = snapshot
            LimitUsage.objects.bulk_create(counted.limits, batch_size=5000)
            snapshot.status = UsageSnapshot.Status.COMPLETE
            snapshot.finished_at = timezone.now()
            snapshot.customers, snapshot.batches = customers, batches
            snapshot.countries = sorted(counted.countries)
            snapshot.save()
            # Older snapshots go (complete, failed, or left running by a worker that died): the
            # dashboard reads the latest complete one. A newer one is never touched.
            UsageSnapshot.objects.filter(computed_at__lte=now).exclude(pk=snapshot.pk).delete()
    except Exception as error:
        UsageSnapshot.objects.filter(pk=snapshot.pk).update(
            status=UsageSnapshot.Status.FAILED, finished_at=timezone.now(), error=repr(error)[:2000]
        )
        raise
    log.info(
        "Feature usage at %s: %d customers in %d batches, %d rows, %d near a limit, %.1f s.",
        now.isoformat(),
        customers,
        batches,
        len(counts),
        len(counted.limits),
        snapshot.duration.total_seconds(),
    )
    return snapshot


def count_usage(*, now: datetime, batch_size: int = BATCH_SIZE) -> Counted:
    """Counts of answers at `now` by (feature, enabled, source kind, source key, plans,
    country), with the numbers of customers and batches, the countries seen, and the
    customers at NEAR per cent or more of a metered limit."""
    catalog = load_catalog_specs()
    metered = {f.key: catalog.feature_ids[f.key] for f in catalog.features if f.kind == METERED}
    counted = Counted()
    for batch in resolved_customers(catalog, now=now, batch_size=batch_size):
        counted.batches += 1
        counted.customers += len(batch)
        for resolved in batch:
            plans = plans_key(resolved)
            counted.countries.add(resolved.country)
            for answer in resolved.resolution.answers.values():
                kind, key = source_parts(answer.source)
                counted.counts[answer.feature_key, answer.enabled, kind, key, plans, resolved.country] += 1
        if metered:
            counted.limits += near_limits(batch, metered)
    counted.countries.discard("")
    return counted


def plans_key(resolved: ResolvedCustomer) -> str:
    """The customer's live plans as FeatureUsage.plans stores them (",basic,business,")."""
    return f",{','.join(resolved.plans)}," if resolved.plans else ""


def near_limits(batch: list[ResolvedCustomer], metered: Mapping[str, int]) -> list[LimitUsage]:
    """The batch's customers at NEAR per cent or more of a metered limit they have, in the
    period their answer is in (one query: the batch's usage summed per customer, feature and
    period). Unlimited answers have no limit to be near."""
    limited = [
        (resolved, answer)
        for resolved in batch
        for key in metered
        if (answer := resolved.resolution.answers.get(key)) is not None
        and answer.granted
        and not answer.unlimited
        and answer.period_start is not None
    ]
    if not limited:
        return []
    totals = period_totals(
        first_customer_id=batch[0].customer_id,
        last_customer_id=batch[-1].customer_id,
        since=min(answer.period_start for _resolved, answer in limited),
    )
    rows = []
    for resolved, answer in limited:
        used = totals.get((resolved.customer_id, metered[answer.feature_key], answer.period_start), 0)
        limit = int(answer.value)
        if used and used * 100 >= NEAR * limit:
            rows.append(
                LimitUsage(
                    customer_id=resolved.customer_id,
                    feature_key=answer.feature_key,
                    period_start=answer.period_start,
                    resets_at=answer.resets_at,
                    used=used,
                    limit=limit,
                    hard=answer.hard,
                    # A limit of 0 used at all is as full as can be: its share counts the units.
                    share=used / limit if limit else float(used),
                    plans=plans_key(resolved),
                    country=resolved.country,
                )
            )
    return rows


def source_parts(source: str) -> tuple[str, str]:
    """("plan", "business") from "plan:business". An override's id is dropped: counts are by
    kind, and each override has its own id."""
    kind, _, key = source.partition(":")
    return kind, "" if kind == FeatureUsage.SourceKind.OVERRIDE else key
