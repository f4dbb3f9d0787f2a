"""What each web process counts in memory on behalf of its checks, and sends to Redis in one
pipeline every `FLUSH_SECONDS` (by the revision listener's thread, `checks.listener`) or
sooner inside any request's round trip (`api.authentication`).

Three counts: the per-key throttle window, the key's last-used stamp and the checks per day
and feature. The throttle allows a request while the key's count in Redis at the last send plus
this process's unsent requests stays within its limit: with several processes it may let
through at most one flush interval's worth of extra requests. Counts not yet sent when a
process is killed are lost (at most `FLUSH_SECONDS` of them): they are statistics, and the
throttle window is a minute. `flush_at_exit` sends what is left when a process ends normally.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from checks.store import Batch, as_int

FLUSH_SECONDS = 0.1
WINDOW_SECONDS = 60  # the throttle window
USAGE_KEY = "apikeys:last-used"  # Redis hash: key prefix -> last use (epoch seconds)
DAYS_KEY = "checks:days"  # Redis set: the days that have a hash of counts (`day_key`)


def day_key(day: str) -> str:
    """Redis hash of one UTC day's checks: feature key (or "*") -> checks."""
    return f"checks:day:{day}"


def throttle_key(prefix: str, window: int) -> str:
    return f"throttle:{prefix}:{window}"


_day: tuple[int, str] = (-1, "")


def day_of(stamp: float) -> str:
    """The UTC day of an epoch time, as checks are counted by; worked out once a day, not
    once a check."""
    global _day
    number = int(stamp // 86400)
    if _day[0] != number:
        _day = (number, datetime.fromtimestamp(number * 86400, UTC).date().isoformat())
    return _day[1]


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

    def admit(self, prefix: str, stamp: int, limit: int, feature: str | None) -> bool:
        """A warm request (`checks.fast`, `usage.api.fast`) counted in one step: its key's
        request in the throttle window, the key's last use and, for a check, the check of
        `feature` (None: not a check). False, counting nothing, when the key has used up its
        window's `limit` (the DRF view then counts it and answers 429)."""
        slot = (prefix, stamp // WINDOW_SECONDS)
        with self.lock:
            pending = self.pending
            if self.sent.get(slot, 0) + self.inflight[slot] + pending.throttle[slot] >= limit:
                return False
            pending.throttle[slot] += 1
            if pending.last_used.get(prefix, 0) < stamp:
                pending.last_used[prefix] = stamp
            if feature is not None:
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
        if self.pending:
            self.execute(Batch())

    def execute(self, batch: Batch) -> list:
        """Run `batch` with what is pending added to it (one round trip); the counts go back
        to pending if it fails. Returns the batch's results."""
        drained = self.drain()
        slots = self.queue(batch, drained)
        try:
            results = batch.execute()
        except Exception:
            self.restore(drained)
            raise
        self.received(slots, results, drained)
        return results


counters = Counters()


def flush_at_exit() -> None:
    """Send what is left as the process ends (registered by `checks.apps`)."""
    with contextlib.suppress(Exception):  # the cache may be gone already; counts are statistics
        counters.flush()
