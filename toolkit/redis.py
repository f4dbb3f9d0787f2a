"""The redis-py client behind Django's default cache, made once per cache backend."""

from __future__ import annotations

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
