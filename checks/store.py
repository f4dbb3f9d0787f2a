"""Several cache commands in one round trip: a Redis pipeline in production and tests, or the
same commands one by one on any other Django cache (the demo's file cache).

The check endpoint's budget is one round trip (docs/operations.md): the revisions, the
throttle counter, the check count and the snapshot are asked together. Keys are Django cache
keys (prefix and version applied), and integers are stored raw, so `cache.incr()` and
`cache.get()` agree with what is written here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from toolkit.redis import connect, is_connected, new_connection, redis_client

_own = threading.local()


def _line() -> tuple[Any, Any] | None:
    """This thread's cache backend and its own Redis connection, connected; None when the cache
    is not Redis.

    The connection is made from the cache's pool settings but kept by the thread, outside the
    pool, for as long as the thread's cache backend is the same. A failure drops its socket and
    the next call connects again (a connection's first call also makes redis-py's handshake:
    HELLO and CLIENT commands, four round trips)."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    connection = getattr(_own, "connection", None)
    if connection is None or _own.backend is not backend or _own.pid != os.getpid():
        client = redis_client()
        if client is None:
            return None
        if connection is not None:
            connection.disconnect()  # redis-py only shuts a socket down in the process that made it
        connection = _own.connection = new_connection(client)
        _own.backend, _own.pid, _own.ahead = backend, os.getpid(), None
    if not is_connected(connection):  # new, or dropped after a failure
        connect(connection)  # its waits bounded by the kernel, not by poll()
    return backend, connection


def hot_mget(keys: list[str]) -> list[Any] | None:
    """MGET of Django cache keys on this thread's own Redis connection: the one command of a
    warm check served from Redis (`checks.snapshots.read_current`). None when the cache is not
    Redis. When `send_ahead(keys)` has sent the same keys, this reads that command's reply.

    redis-py's client wraps each command in its pool, retry, event and metrics layers: on this
    machine a GET took 82 µs through the client against 38 µs on a connection (BENCHMARKS.md).
    Keys are made by the backend itself, not through the `cache` proxy (2 µs a key)."""
    line = _line()
    if line is None:
        return None
    backend, connection = line
    try:
        if _own.ahead != keys:
            settle()
            _send_mget(backend, connection, keys)
        _own.ahead = None
        return connection.read_response()
    except BaseException:
        _own.ahead = None
        connection.disconnect()
        raise


def _send_mget(backend: RedisCache, connection: Any, keys: list[str]) -> None:
    connection.send_command("MGET", *[backend.make_key(key) for key in keys])


def send_ahead(keys: list[str]) -> bool:
    """Send `hot_mget(keys)`'s command now; `hot_mget(keys)` reads its reply later, so the work
    done in between hides the round trip. False when the cache is not Redis or the command could
    not be sent (the later `hot_mget` then meets the failure itself). A reply nobody asks for is
    read and dropped by `settle()`: at the end of the request at the latest
    (`checks.middleware.ReadAheadMiddleware`), or before the thread's next command."""
    try:
        line = _line()
        if line is None:
            return False
        settle()
        _send_mget(*line, keys)
    except (RedisError, OSError):
        if getattr(_own, "connection", None) is not None:
            _own.connection.disconnect()
        return False
    _own.ahead = keys
    return True


def settle() -> None:
    """Read and drop the reply to a command `send_ahead` sent and nobody asked for, so that the
    thread's next command reads its own reply. A failure only drops the connection."""
    if getattr(_own, "ahead", None) is None:
        return
    _own.ahead = None
    try:
        _own.connection.read_response()
    except (RedisError, OSError):
        _own.connection.disconnect()


def as_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Batch:
    """Queue commands, then `execute()` them in one round trip; each method returns the
    index of its result in the list `execute()` returns."""

    def __init__(self) -> None:
        self._ops: list[tuple[str, tuple]] = []

    def _add(self, op: str, *args: Any) -> int:
        self._ops.append((op, args))
        return len(self._ops) - 1

    def mget(self, keys: Iterable[str]) -> int:
        """Values of several keys (bytes or ints as stored; None when missing)."""
        return self._add("mget", list(keys))

    def get(self, key: str) -> int:
        return self._add("get", key)

    def incr(self, key: str, ttl: int, amount: int = 1) -> int:
        """Add to a counter that disappears `ttl` seconds after its first increment."""
        return self._add("incr", key, ttl, amount)

    def hincrby_many(self, key: str, amounts: dict[str, int]) -> int:
        """Add to several fields of one hash, as one command: redis-py packs every pipelined
        command in Python, and a tenth of a second of single-feature checks counted 50-150
        features (BENCHMARKS.md)."""
        return self._add("hincrby_many", key, amounts)

    def hset(self, key: str, field: str, value: int) -> int:
        return self._add("hset", key, field, value)

    def sadd(self, key: str, member: str) -> int:
        return self._add("sadd", key, member)

    def __len__(self) -> int:
        return len(self._ops)

    def execute(self) -> list[Any]:
        if not self._ops:
            return []
        client = redis_client()
        if client is not None:
            return self._execute_redis(client)
        return [_FALLBACK[op](*args) for op, args in self._ops]

    def _execute_redis(self, client: Any) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        # Where each op's result sits among the pipeline's replies (incr sends two commands).
        slots: list[int] = []
        sent = 0
        for op, args in self._ops:
            slots.append(sent)
            if op == "mget":
                pipe.mget([cache.make_key(k) for k in args[0]])
            elif op == "get":
                pipe.get(cache.make_key(args[0]))
            elif op == "incr":
                key = cache.make_key(args[0])
                pipe.incrby(key, args[2])
                pipe.expire(key, args[1])
                sent += 1
            elif op == "hincrby_many":
                flat = [item for pair in args[1].items() for item in pair]
                pipe.eval(_HINCRBY_MANY, 1, cache.make_key(args[0]), *flat)
            elif op == "hset":
                pipe.hset(cache.make_key(args[0]), args[1], args[2])
            elif op == "sadd":
                pipe.sadd(cache.make_key(args[0]), args[1])
            sent += 1
        replies = pipe.execute()
        return [replies[slot] for slot in slots]


_HINCRBY_MANY = """
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"""


# --- the same commands on a cache without pipelines (demo only: not atomic across processes) ---


def _fallback_mget(keys: list[str]) -> list[Any]:
    values = cache.get_many(keys)
    return [values.get(key) for key in keys]


def _fallback_incr(key: str, ttl: int, amount: int) -> int:
    cache.add(key, 0, timeout=ttl)
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between the two calls
        cache.set(key, amount, timeout=ttl)
        return amount


def _fallback_hincrby_many(key: str, amounts: dict[str, int]) -> int:
    mapping = cache.get(key) or {}
    for field, amount in amounts.items():
        mapping[field] = mapping.get(field, 0) + amount
    cache.set(key, mapping, timeout=None)
    return len(amounts)


def _fallback_hset(key: str, field: str, value: int) -> int:
    mapping = cache.get(key) or {}
    mapping[field] = value
    cache.set(key, mapping, timeout=None)
    return 1


def _fallback_sadd(key: str, member: str) -> int:
    members = cache.get(key) or set()
    if member in members:
        return 0
    cache.set(key, members | {member}, timeout=None)
    return 1


_FALLBACK = {
    "mget": _fallback_mget,
    "get": lambda key: cache.get(key),
    "incr": _fallback_incr,
    "hincrby_many": _fallback_hincrby_many,
    "hset": _fallback_hset,
    "sadd": _fallback_sadd,
}
