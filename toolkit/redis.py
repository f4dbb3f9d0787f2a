"""The redis-py client behind Django's default cache, and single connections made from its pool
settings. The only module that touches private attributes of Django's cache or of redis-py;
`tests/toolkit/test_redis_adapter.py` fails, naming this module, when an upgrade renames one.

- `RedisCache._cache` (Django): the backend's client factory. Django has no public way to get
  the redis-py client of a cache backend without building a new one on every call.
- `AbstractConnection._sock` (redis-py): the connection's socket, None until `connect()` and
  again after `disconnect()`. redis-py has no public test of whether a connection is connected,
  and no public handle on its socket, which the kernel timeouts below are set on.
- `ConnectionPool.connection_class` and `connection_kwargs` (redis-py, undocumented): how the
  pool makes its connections, to make one with the same settings outside the pool.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache


def redis_client() -> Any | None:
    """The redis-py client behind Django's default cache, or None when it is not Redis.

    Kept on the cache backend (one per thread, on one connection pool): Django's
    `get_client()` builds a new `redis.Redis` on every call, and redis-py's constructor (its
    response callbacks, its event dispatcher) cost a check about a tenth of its time
    (BENCHMARKS.md)."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return None
    client = backend.__dict__.get("_entitle_redis_client")
    if client is None:
        client = backend.__dict__["_entitle_redis_client"] = backend._cache.get_client(write=True)
    return client


def new_connection(client: Any) -> Any:
    """A connection with the settings of `client`'s pool, not connected, that belongs to no
    pool: whoever makes it keeps it, and disconnects it when done."""
    pool = client.connection_pool
    return pool.connection_class(**pool.connection_kwargs)


def is_connected(connection: Any) -> bool:
    """Whether the connection has a socket: False when new, and after a failure dropped it."""
    return connection._sock is not None


def connect(connection: Any) -> None:
    """Connect (with redis-py's handshake), then bound the socket's waits in the kernel.

    A Python socket with a timeout calls poll() before every send and every receive: two more
    system calls a round trip, and each lets another thread take the GIL (BENCHMARKS.md). A
    blocking socket with kernel limits (SO_RCVTIMEO, SO_SNDTIMEO) waits just as long at most:
    a receive that runs out fails with EAGAIN, which redis-py raises as a ConnectionError.
    (`struct` packs a `timeval` as two C longs, as on Linux.)"""
    connection.connect()
    sock: socket.socket = connection._sock
    timeout = sock.gettimeout()
    if timeout:
        seconds = int(timeout)
        limit = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
    sock.settimeout(None)
