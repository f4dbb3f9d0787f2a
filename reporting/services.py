"""Writes of reporting: recomputing the feature usage snapshot the dashboard reads.

The snapshot is derived data (plain tables, no history): every customer is resolved at one
instant, in batches, the answers are counted in memory by (feature, on/off, source, plans,
country), and the counts replace the previous snapshot in one transaction. The dashboard
never sees a half-written snapshot, and never resolves a customer itself.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from catalog.selectors import load_catalog_specs
from reporting.models import FeatureUsage, UsageSnapshot
from reporting.resolving import resolved_customers

log = logging.getLogger(__name__)

LOCK_KEY = "reporting:usage-snapshot-refresh"
# Longer than a refresh of the largest customer base takes; a worker that died holding the
# lock delays the next refresh by at most this long.
LOCK_SECONDS = 30 * 60
BATCH_SIZE = 2000

UsageKey = tuple[str, bool, str, str, str, str]  # feature, enabled, kind, key, plans, country


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
        counts, customers, batches, countries = count_usage(now=now, batch_size=batch_size)
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
            snapshot.status = UsageSnapshot.Status.COMPLETE
            snapshot.finished_at = timezone.now()
            snapshot.customers, snapshot.batches = customers, batches
            snapshot.countries = sorted(countries)
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
        "Feature usage at %s: %d customers in %d batches, %d rows, %.1f s.",
        now.isoformat(),
        customers,
        batches,
        len(counts),
        snapshot.duration.total_seconds(),
    )
    return snapshot


def count_usage(
    *, now: datetime, batch_size: int = BATCH_SIZE
) -> tuple[Counter[UsageKey], int, int, set[str]]:
    """Counts of answers at `now` by (feature, enabled, source kind, source key, plans,
    country), with the numbers of customers and batches and the countries seen."""
    catalog = load_catalog_specs()
    counts: Counter[UsageKey] = Counter()
    customers = batches = 0
    countries: set[str] = set()
    for batch in resolved_customers(catalog, now=now, batch_size=batch_size):
        batches += 1
        customers += len(batch)
        for resolved in batch:
            plans = f",{','.join(resolved.plans)}," if resolved.plans else ""
            countries.add(resolved.country)
            for answer in resolved.resolution.answers.values():
                kind, key = source_parts(answer.source)
                counts[answer.feature_key, answer.enabled, kind, key, plans, resolved.country] += 1
    countries.discard("")
    return counts, customers, batches, countries


def source_parts(source: str) -> tuple[str, str]:
    """("plan", "business") from "plan:business". An override's id is dropped: counts are by
    kind, and each override has its own id."""
    kind, _, key = source.partition(":")
    return kind, "" if kind == FeatureUsage.SourceKind.OVERRIDE else key
