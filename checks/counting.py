"""How often applications check each feature, per day (for the dashboard), counted without a database
write per check.

A check adds 1 to this process's count (`checks.counters`), which reaches a Redis hash per
day (`HINCRBY`) within a tenth of a second, or inside the next request's round trip; a check of
every feature at once counts under "*", spread over every active feature when flushed.
`flush_check_counts` (a Celery task, `checks.tasks`) moves the counts into `CheckCount` exactly
once: each day's hash is renamed to a batch key in one atomic step, and a batch is added to the
table and recorded as applied in one transaction, so a worker dying anywhere neither loses nor
doubles counts. The same flush copies the keys' last-used stamps.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from api.models import APIKey, CheckCount, CheckCountBatch
from catalog.models import Feature
from checks.counters import DAYS_KEY, USAGE_KEY, counters, day_key, day_of
from toolkit.redis import redis_client

ALL_FEATURES = "*"
BATCHES_KEY = "checks:batches"  # Redis set: ids of the batches renamed and not yet applied


def count(feature_key: str, at: datetime, amount: int = 1) -> None:
    """Count one check of `feature_key` (or "*": every feature)."""
    counters.check(day_of(at.timestamp()), feature_key, amount)


def uncount(feature_key: str, at: datetime) -> None:
    """Take back a check counted before its answer turned out to be an error (401, 404, 429)."""
    count(feature_key, at, -1)


# --- flushing ------------------------------------------------------------------------------------


def flush() -> dict[str, int]:
    """Move every pending count into `CheckCount`; returns {"batches", "checks"} applied.
    (This process's unsent counts go first; a web process sends its own within a tenth of a
    second.)"""
    with contextlib.suppress(RedisError):
        counters.flush()
    client = redis_client()
    if client is None:
        return _flush_fallback()
    days_key, batches_key = cache.make_key(DAYS_KEY), cache.make_key(BATCHES_KEY)
    today = timezone.now().astimezone(UTC).date().isoformat()
    for raw_day in client.smembers(days_key):
        day = raw_day.decode()
        source = cache.make_key(day_key(day))
        batch_id = f"{day}:{uuid.uuid4().hex}"
        target = cache.make_key(f"checks:batch:{batch_id}")
        # Rename and register in one MULTI: no moment where the counts belong to no list. (A
        # concurrent flush may have renamed it first: then this batch is empty, which is harmless.)
        if client.exists(source):
            pipe = client.pipeline(transaction=True)
            pipe.rename(source, target)
            pipe.sadd(batches_key, batch_id)
            pipe.execute(raise_on_error=False)
        elif day != today:
            client.srem(days_key, raw_day)
    applied = {"batches": 0, "checks": 0}
    for raw_batch in client.smembers(batches_key):
        batch_id = raw_batch.decode()
        key = cache.make_key(f"checks:batch:{batch_id}")
        counts = {field.decode(): int(value) for field, value in client.hgetall(key).items()}
        day = date.fromisoformat(batch_id.split(":", 1)[0])
        added = _apply(batch_id, {(day, feature): n for feature, n in counts.items()})
        # Only once the batch is recorded as applied may its key go.
        client.delete(key)
        client.srem(batches_key, raw_batch)
        if added is not None:
            applied["batches"] += 1
            applied["checks"] += added
    _flush_last_used(client)
    return applied


def _apply(batch_id: str, counts: dict[tuple[date, str], int]) -> int | None:
    """Add a batch to `CheckCount` unless it was added before; returns the checks added, or
    None when the batch had already been applied."""
    with transaction.atomic():
        _, created = CheckCountBatch.objects.get_or_create(batch_id=batch_id)
        if not created:
            return None
        features = dict(Feature.objects.values_list("key", "status"))
        active = [key for key, status in features.items() if status == Feature.Status.ACTIVE]
        totals: dict[tuple[date, str], int] = defaultdict(int)
        for (day, feature), n in counts.items():
            if n <= 0:
                continue
            if feature == ALL_FEATURES:
                for key in active:
                    totals[(day, key)] += n
            elif feature in features:  # a count for a key that is no feature is dropped
                totals[(day, feature)] += n
        for (day, feature), n in totals.items():
            updated = CheckCount.objects.filter(feature_key=feature, day=day).update(count=F("count") + n)
            if not updated:
                _insert_or_add(feature, day, n)
        return sum(totals.values())


def _insert_or_add(feature: str, day: date, n: int) -> None:
    if connection.vendor in ("postgresql", "sqlite"):
        table = CheckCount._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (feature_key, day, count) VALUES (%s, %s, %s) "
                f"ON CONFLICT (feature_key, day) DO UPDATE SET count = {table}.count + EXCLUDED.count",
                [feature, day, n],
            )
        return
    row, created = CheckCount.objects.get_or_create(feature_key=feature, day=day, defaults={"count": n})
    if not created:
        CheckCount.objects.filter(pk=row.pk).update(count=F("count") + n)


def _flush_last_used(client) -> None:
    """Copy the keys' last-used stamps (kept in Redis by every request) to their rows."""
    key = cache.make_key(USAGE_KEY)
    stamps = {prefix.decode(): int(value) for prefix, value in client.hgetall(key).items()}
    for prefix, stamp in stamps.items():
        used = datetime.fromtimestamp(stamp, tz=UTC)
        APIKey.objects.filter(prefix=prefix).exclude(last_used_at__gte=used).update(last_used_at=used)
        # Drop the stamp unless a newer one arrived meanwhile.
        client.eval(
            "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
            "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0",
            1,
            key,
            prefix,
            str(stamp),
        )


def _flush_fallback() -> dict[str, int]:
    """The demo's file cache: no atomic rename, so a count racing the flush may be lost."""
    pending: dict[str, dict[str, int]] = {}
    for day in cache.get(DAYS_KEY) or set():
        pending[day] = cache.get(day_key(day)) or {}
        cache.delete(day_key(day))
    cache.delete(DAYS_KEY)
    applied = {"batches": 0, "checks": 0}
    for day, counts in pending.items():
        added = _apply(
            f"{day}:{uuid.uuid4().hex}", {(date.fromisoformat(day), f): n for f, n in counts.items()}
        )
        applied["batches"] += 1
        applied["checks"] += added or 0
    for prefix, stamp in (cache.get(USAGE_KEY) or {}).items():
        used = datetime.fromtimestamp(stamp, tz=UTC)
        APIKey.objects.filter(prefix=prefix).exclude(last_used_at__gte=used).update(last_used_at=used)
    cache.delete(USAGE_KEY)
    return applied


def prune_batches(older_than: timedelta = timedelta(days=7)) -> int:
    """Forget applied batch ids once no flush can meet them again."""
    deleted, _ = CheckCountBatch.objects.filter(applied_at__lt=timezone.now() - older_than).delete()
    return deleted
