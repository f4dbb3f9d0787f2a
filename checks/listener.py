"""Each web process's live view of the revisions, so that a warm check makes no cache round
trip at all (BENCHMARKS.md).

Every bump is published on a Redis channel in the same atomic step as its increment
(`toolkit.revisions.bump`). A listener thread per process subscribes to it; once subscribed it
reads the catalog and keys revisions, and from then on applies every message: the catalog and
keys revisions are kept, a customer's bump drops that customer's snapshot from process memory
(and is remembered for a minute, for snapshots being built meanwhile). Bumps made by this
process are applied at once, before the message comes back, so a write is seen by the next
check of the same process without waiting. The same thread sends the counters
(`checks.counters`) every `FLUSH_SECONDS`.

What is trusted without asking Redis, and only while the listener is *healthy* (subscribed,
and its last ping answered less than `STALE_AFTER` seconds ago, 0.9 s):

- a remembered API key, when the keys revision it was read under is the current one;
- a snapshot in process memory, when it was read during the current subscription (its
  `epoch`), under the current catalog revision, and no bump of its customer came since.

A reconnect starts a new epoch: snapshots of the old one are checked with a round trip again,
since customer bumps may have been missed while disconnected. When the listener is not
healthy, checks take the round trip of `api.authentication`.

Nothing starts on import: `checks.apps` hands this process's own bumps to `known` and tells it
what to drop on a customer's bump; the thread starts on the first check (`listener.ensure()`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from api.keys import REVISION_KEY as KEYS_REVISION_KEY
from checks.counters import FLUSH_SECONDS, counters
from checks.store import as_int
from toolkit import revisions
from toolkit.redis import redis_client

log = logging.getLogger(__name__)

# Pings go down the same connection as the messages, so a pong proves every bump published
# before its ping has arrived. With no pong for STALE_AFTER, the process stops trusting what it
# knows: even a connection that stalls without closing delays no change by more than that
# (a change is visible to checks within one second).
PING_SECONDS = 0.25
STALE_AFTER = 0.9
BUMP_MEMORY_SECONDS = 60.0


def _ignore(key: str, value: int) -> None:
    return None


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
        # Called with (customer revision key, new value) on each customer bump: what this
        # process keeps of that customer and is now out of date goes (set by `checks.apps`).
        self.on_customer_bump: Callable[[str, int], None] = _ignore

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
        elif key.startswith(revisions.CUSTOMER_PREFIX):
            with self.lock:
                known = self.bumps.get(key)
                if known is None or known[0] < value:
                    self.bumps[key] = (value, time.monotonic())
            self.on_customer_bump(key, value)

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
            self.thread = threading.Thread(target=self._run, name="entitle-listener", daemon=True)
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
