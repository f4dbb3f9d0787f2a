"""Each web process's live view of the revisions, and the counters a check adds to, so that a
warm check makes no cache round trip at all (BENCHMARKS.md).

**Revisions.** Every bump is published on a Redis channel in the same atomic step as its
increment (`catalog.revisions.bump`). A listener thread per process subscribes to it; once
subscribed it reads the catalog and keys revisions, and from then on applies every message:
the catalog and keys revisions are kept, a customer's bump drops that customer's snapshot from
process memory (and is remembered for a minute, for snapshots being built meanwhile). Bumps
made by this process are applied at once, before the message comes back, so a write is seen
by the next check of the same process without waiting.

What is trusted without asking Redis, and only while the listener is *healthy* (subscribed,
and its last ping answered less than `STALE_AFTER` seconds ago, 0.9 s):

- a remembered API key, when the keys revision it was read under is the current one;
- a snapshot in process memory, when it was read during the current subscription (its
  `epoch`), under the current catalog revision, and no bump of its customer came since.

A reconnect starts a new epoch: snapshots of the old one are checked with a round trip again,
since customer bumps may have been missed while disconnected. When the listener is not
healthy, checks take the round trip of `api.authentication` exactly as before.

**Counters.** The per-key throttle window, the key's last-used stamp and the daily check
counts are added to in process memory and sent to Redis in one pipeline every
`FLUSH_SECONDS` by the listener thread, or sooner inside any request's round trip. The
throttle allows a request while the key's count in Redis at the last flush plus this process's
unsent requests stays within its limit: with several processes it may let through at most one
flush interval's worth of extra requests. Counts not yet sent when a process is killed are lost
(at most `FLUSH_SECONDS` of them): they are statistics, and the throttle window is a minute.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from api.keys import REVISION_KEY as KEYS_REVISION_KEY
from api.store import Batch, as_int
from catalog import revisions
from toolkit.redis import redis_client

log = logging.getLogger(__name__)

# Pings go down the same connection as the messages, so a pong proves every bump published
# before its ping has arrived. With no pong for STALE_AFTER, the process stops trusting what it
# knows: even a connection that stalls without closing delays no change by more than that
# (a change is visible to checks within one second).
PING_SECONDS = 0.25
STALE_AFTER = 0.9
FLUSH_SECONDS = 0.1
BUMP_MEMORY_SECONDS = 60.0
WINDOW_SECONDS = 60
USAGE_KEY = "apikeys:last-used"
CUSTOMER_PREFIX = "rev:customer:"


def throttle_key(prefix: str, window: int) -> str:
    return f"throttle:{prefix}:{window}"


_day: tuple[int, str] = (-1, "")


def day_of(stamp: float) -> str:
    """The UTC day of an epoch time, as checks are counted by (`api.counting`); worked out
    once a day, not once a check."""
    global _day
    number = int(stamp // 86400)
    if _day[0] != number:
        _day = (number, datetime.fromtimestamp(number * 86400, UTC).date().isoformat())
    return _day[1]


# --- revisions ------------------------------------------------------------------------------------


class Revisions:
    """What this process knows of the revisions, and since when it may trust it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.epoch = 0  # moves on each (re)subscription; 0: never subscribed
        self.connected = False
        self.healthy_until = 0.0  # time.monotonic()
        self.catalog: int | None = None
        self.keys: int | None = None
        self.bumps: dict[str, tuple[int, float]] = {}  # customer revision key -> (value, seen at)

    def healthy(self) -> bool:
        return self.connected and time.monotonic() < self.healthy_until

    def trusted_epoch(self) -> int:
        """The epoch to tag reads with: 0 (never trusted) unless the listener is healthy."""
        return self.epoch if self.healthy() else 0

    def observe(self, key: str, value: int) -> None:
        """A revision moved to `value` (a message, a bump of this process, or a read)."""
        if key == revisions.CATALOG_KEY:
            with self.lock:
                self.catalog = value if self.catalog is None else max(self.catalog, value)
        elif key == KEYS_REVISION_KEY:
            with self.lock:
                self.keys = value if self.keys is None else max(self.keys, value)
        elif key.startswith(CUSTOMER_PREFIX):
            with self.lock:
                known = self.bumps.get(key)
                if known is None or known[0] < value:
                    self.bumps[key] = (value, time.monotonic())
            from api import snapshots

            snapshots.forget_older(key, value)

    def observe_read(self, catalog: int | None = None, keys: int | None = None) -> None:
        """Revisions read from Redis in a round trip: never older than what a message said."""
        if catalog is not None:
            self.observe(revisions.CATALOG_KEY, catalog)
        if keys is not None:
            self.observe(KEYS_REVISION_KEY, keys)

    def customer_moved_past(self, key: str, value: int) -> bool:
        known = self.bumps.get(key)
        return known is not None and known[0] > value

    def start_epoch(self, catalog: int | None, keys: int | None) -> None:
        with self.lock:
            self.epoch += 1
            self.bumps.clear()
            self.catalog, self.keys = catalog, keys
            self.connected = True
            self.healthy_until = time.monotonic() + STALE_AFTER

    def alive(self) -> None:
        self.healthy_until = time.monotonic() + STALE_AFTER

    def down(self) -> None:
        self.connected = False

    def prune(self) -> None:
        horizon = time.monotonic() - BUMP_MEMORY_SECONDS
        with self.lock:
            for key in [k for k, (_, seen) in self.bumps.items() if seen < horizon]:
                del self.bumps[key]


known = Revisions()
revisions.observe(known.observe)


# --- counters -------------------------------------------------------------------------------------


@dataclass
class Pending:
    """Counts not yet in Redis: throttle windows, last-used stamps, checks per day and feature."""

    throttle: Counter = field(default_factory=Counter)  # (prefix, window) -> requests
    last_used: dict[str, int] = field(default_factory=dict)  # prefix -> epoch seconds
    checks: Counter = field(default_factory=Counter)  # (day, feature) -> checks

    def __bool__(self) -> bool:
        return bool(self.throttle or self.last_used or self.checks)

    def merge(self, other: Pending) -> None:
        self.throttle.update(other.throttle)
        self.checks.update(other.checks)
        for prefix, stamp in other.last_used.items():
            self.last_used[prefix] = max(stamp, self.last_used.get(prefix, 0))


class Counters:
    """A key's requests in a throttle window = Redis's count at the last send + what is on its
    way there + what is not sent yet. (Counted on the way until Redis's answer comes back,
    so that a send in progress never makes a key look less busy than it is.)"""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = Pending()
        self.inflight: Counter = Counter()  # (prefix, window) -> requests being sent
        self.sent: dict[tuple[str, int], int] = {}  # (prefix, window) -> Redis's count at the last send

    def window_count(self, prefix: str, window: int) -> int:
        """Requests of this key in this window, as far as this process knows."""
        slot = (prefix, window)
        return self.sent.get(slot, 0) + self.inflight[slot] + self.pending.throttle[slot]

    def request(self, prefix: str, stamp: int) -> int:
        """Count one request of a key; returns the window's count with it."""
        slot = (prefix, stamp // WINDOW_SECONDS)
        with self.lock:
            self.pending.throttle[slot] += 1
            if self.pending.last_used.get(prefix, 0) < stamp:
                self.pending.last_used[prefix] = stamp
            return self.sent.get(slot, 0) + self.inflight[slot] + self.pending.throttle[slot]

    def check(self, day: str, feature: str, amount: int = 1) -> None:
        with self.lock:
            self.pending.checks[(day, feature)] += amount

    def admit(self, prefix: str, stamp: int, limit: int, feature: str) -> bool:
        """A warm check (`api.fastcheck`) counted in one step: its key's request in the throttle
        window, the key's last use and the check of `feature`. False, counting nothing, when
        the key has used up its window's `limit` (the DRF view then counts it and answers 429)."""
        slot = (prefix, stamp // WINDOW_SECONDS)
        with self.lock:
            pending = self.pending
            if self.sent.get(slot, 0) + self.inflight[slot] + pending.throttle[slot] >= limit:
                return False
            pending.throttle[slot] += 1
            if pending.last_used.get(prefix, 0) < stamp:
                pending.last_used[prefix] = stamp
            pending.checks[(day_of(stamp), feature)] += 1
            return True

    def drain(self) -> Pending:
        with self.lock:
            drained, self.pending = self.pending, Pending()
            self.inflight.update(drained.throttle)
            return drained

    def restore(self, drained: Pending) -> None:
        """The send failed: count it as not sent."""
        with self.lock:
            self.inflight.subtract(drained.throttle)
            self.pending.merge(drained)

    def queue(self, batch: Batch, drained: Pending) -> list[tuple[tuple[str, int], int]]:
        """Add the drained counts to a round trip; returns where each throttle reply will be."""
        from api.counting import DAYS_KEY, day_key

        slots = []
        for (prefix, window), amount in drained.throttle.items():
            at = batch.incr(throttle_key(prefix, window), WINDOW_SECONDS * 2, amount)
            slots.append(((prefix, window), at))
        for prefix, stamp in drained.last_used.items():
            batch.hset(USAGE_KEY, prefix, stamp)
        days: dict[str, dict[str, int]] = {}
        for (day, feature), amount in drained.checks.items():
            if amount:
                days.setdefault(day, {})[feature] = amount
        for day, amounts in days.items():
            batch.hincrby_many(day_key(day), amounts)  # one command for every feature of the day
            batch.sadd(DAYS_KEY, day)
        return slots

    def received(self, slots: list[tuple[tuple[str, int], int]], results: list, drained: Pending) -> None:
        """Redis's counts after the send: the base the next requests are counted on."""
        current = int(time.time()) // WINDOW_SECONDS
        with self.lock:
            self.inflight.subtract(drained.throttle)
            for slot, index in slots:
                value = as_int(results[index])
                if value is not None:
                    self.sent[slot] = max(value, self.sent.get(slot, 0))
            for slot in [s for s in self.sent if s[1] < current - 1]:
                del self.sent[slot]
            for slot in [s for s, n in self.inflight.items() if n <= 0]:
                del self.inflight[slot]

    def flush(self) -> None:
        """Send what is pending in one round trip (the listener's beat; tests; exit)."""
        drained = self.drain()
        if not drained:
            return
        batch = Batch()
        slots = self.queue(batch, drained)
        try:
            results = batch.execute()
        except Exception:
            self.restore(drained)
            raise
        self.received(slots, results, drained)


counters = Counters()


# --- the listener ---------------------------------------------------------------------------------


class Listener:
    """One daemon thread per process: subscribes, keeps `known` current, flushes `counters`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None

    def ensure(self) -> None:
        """Start the thread in this process if it is not running (cheap when it is)."""
        if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
            return
        if not settings.API_LIVE_REVISIONS or redis_client() is None:
            return
        with self.lock:
            if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
                return
            known.down()  # a forked child inherits its parent's view, not its subscription
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._run, name="entitle-live", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                self._listen()
                delay = 0.1
            except Exception:  # Redis gone, a reply we did not expect: say so, go on
                log.warning("Revision listener lost its connection; checks use a round trip", exc_info=True)
            known.down()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _listen(self) -> None:
        client = redis_client()
        if client is None:
            return
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(revisions.channel())
            deadline = time.monotonic() + 5
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("No subscription confirmed")
            catalog, keys = client.mget(
                [cache.make_key(revisions.CATALOG_KEY), cache.make_key(KEYS_REVISION_KEY)]
            )
            known.start_epoch(as_int(catalog), as_int(keys))
            last_ping = last_flush = last_prune = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=FLUSH_SECONDS)
                if message is not None:
                    self._handle(message)
                now = time.monotonic()
                if now - last_ping >= PING_SECONDS:
                    pubsub.ping()
                    last_ping = now
                if now - last_flush >= FLUSH_SECONDS:
                    counters.flush()
                    last_flush = now
                if now - last_prune >= BUMP_MEMORY_SECONDS / 4:
                    known.prune()
                    last_prune = now
        finally:
            known.down()
            pubsub.close()

    @staticmethod
    def _handle(message: dict[str, Any]) -> None:
        if message["type"] == "pong":
            known.alive()
        elif message["type"] == "message":
            known.alive()
            data = message["data"]
            key, _, value = (data.decode() if isinstance(data, bytes) else str(data)).rpartition(" ")
            number = as_int(value)
            if key and number is not None:
                known.observe(key, number)


listener = Listener()


@atexit.register
def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):  # the cache may be gone already; counts are statistics
        counters.flush()
