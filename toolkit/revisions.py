"""Revision stamps that cached entitlement answers are keyed by (docs/operations.md, caching).

The catalog revision moves with any change to features, items, entitlements, segments or
targeting rules; a customer's revision with any change to its subscriptions, add-ons,
overrides or segment lists. A plan change touching 50k customers is one increment, not 50k
cache deletes. Bumps happen after commit so a reader never caches a rolled-back state.

A customer's revision is keyed by its `external_id`, the id applications check with, so a
check reads both revisions in one round trip without first asking the database for the
customer's primary key: writers name the customers by external id too.

A stamp the cache has lost (eviction, restart) is recreated from the clock in milliseconds,
never from 0, so a reader holding a number seen before the loss cannot match it again.

Every bump on Redis is published too (`CHANNEL`, "<key> <new value>", in the same atomic
step as the increment), and handed to this process's observers at once: `checks.listener` keeps each
web process's view of the revisions current from that channel, so a warm check needs no round
trip at all (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from django.core.cache import cache
from django.db import transaction

CATALOG_KEY = "rev:catalog"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._@:+-]{1,100}")


def id_part(external_id: str) -> str:
    """`external_id` as a piece of a cache key: itself when short and plain, else a digest
    (Redis takes any bytes, but Django warns about spaces and long keys)."""
    if _PLAIN_ID.fullmatch(external_id):
        return external_id
    return "~" + hashlib.sha256(external_id.encode("utf-8", "surrogatepass")).hexdigest()


CUSTOMER_PREFIX = "rev:customer:"


def customer_key(external_id: str) -> str:
    return f"{CUSTOMER_PREFIX}{id_part(external_id)}"


def fresh_stamp() -> int:
    """The value a lost stamp restarts from: later than any stamp of the same key before."""
    return int(time.time() * 1000)


CHANNEL = "revisions"
# Increment (an unknown key starts from the clock, see above) and publish, atomically: no
# reader can see the new value before the message that announces it is on its way.
_BUMP_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end
local value = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[3] .. ' ' .. value)
return value
"""
_observers: list[Callable[[str, int], None]] = []


def observe(callback: Callable[[str, int], None]) -> None:
    """Call `callback(key, new value)` after every bump this process makes (`checks.listener`)."""
    if callback not in _observers:
        _observers.append(callback)


def channel() -> str:
    """The Redis channel bumps are published on (under the cache's key prefix)."""
    return cache.make_key(CHANNEL)


def bump(key: str) -> int:
    """Move one revision on; returns its new value."""
    from toolkit.redis import redis_client

    client = redis_client()
    if client is not None:
        value = int(client.eval(_BUMP_SCRIPT, 1, cache.make_key(key), channel(), fresh_stamp(), key))
    else:
        try:
            value = cache.incr(key)
        except ValueError:
            # Unknown key: start from the clock (see the module docstring), then move on from
            # it, so that two writers racing here still end on different numbers.
            cache.add(key, fresh_stamp(), timeout=None)
            value = cache.incr(key)
    for callback in _observers:
        callback(key, value)
    return value


def bump_many(keys: list[str]) -> None:
    """Move several revisions on, as `bump` each, in one round trip (the scheduled-change
    sweep moves hundreds of customers' revisions per batch)."""
    from toolkit.redis import redis_client

    client = redis_client()
    if client is None or len(keys) < 2:
        for key in keys:
            bump(key)
        return
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.eval(_BUMP_SCRIPT, 1, cache.make_key(key), channel(), fresh_stamp(), key)
    for key, value in zip(keys, pipeline.execute(), strict=True):
        for callback in _observers:
            callback(key, int(value))


def catalog_changed() -> None:
    """Every cached answer may be stale: move the catalog revision after commit."""
    pending = getattr(_coalescing, "pending", None)
    if pending is not None:
        pending.catalog = True
        return
    transaction.on_commit(lambda: bump(CATALOG_KEY))


def customers_changed(external_ids: Iterable[str]) -> None:
    """These customers' cached answers may be stale: move their revisions after commit."""
    keys = [customer_key(external_id) for external_id in external_ids]
    if not keys:
        return
    pending = getattr(_coalescing, "pending", None)
    if pending is not None:
        pending.customers.update(keys)
        return
    transaction.on_commit(lambda: bump_many(keys))


class _Pending:
    def __init__(self) -> None:
        self.catalog = False
        self.customers: set[str] = set()


_coalescing = threading.local()


@contextlib.contextmanager
def coalesced() -> Iterator[None]:
    """Within a transaction: every `catalog_changed()` and `customers_changed()` inside makes
    one round trip after commit, registered on the way out (a 10k-row import would otherwise
    make 10k). Nested, the outer one registers."""
    if getattr(_coalescing, "pending", None) is not None:
        yield
        return
    pending = _coalescing.pending = _Pending()
    try:
        yield
    finally:
        _coalescing.pending = None
    keys = sorted(pending.customers) + ([CATALOG_KEY] if pending.catalog else [])
    if keys:
        transaction.on_commit(lambda: bump_many(keys))


def read(*keys: str) -> list[int]:
    """The current values of these revisions, in one cache round trip; a lost one is first
    recreated from the clock (see the module docstring)."""
    values = cache.get_many(keys)
    if len(values) < len(keys):
        for key in keys:
            if key not in values:
                cache.add(key, fresh_stamp(), timeout=None)
        values = cache.get_many(keys)
    return [int(values.get(key, 0)) for key in keys]
