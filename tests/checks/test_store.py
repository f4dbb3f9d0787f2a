"""The hot path's Redis client (checks.store): made once per cache backend, not once per check
(redis-py's constructor cost a warm check about a tenth of its time)."""

from __future__ import annotations

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings

from checks.store import Batch, hot_mget
from toolkit.redis import redis_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def clients_built(monkeypatch):
    """Every redis.Redis constructed from now on (pipelines are not clients)."""
    built = []
    original = redis.Redis.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    return built


def test_redis_client__asked_twice__the_same_client():
    assert redis_client() is redis_client()


def test_warm_check__builds_no_redis_client(demo, reader, clients_built):
    assert reader.get("customers/acme/entitlements").status_code == 200
    clients_built.clear()

    response = reader.get("customers/acme/entitlements")

    assert response.status_code == 200
    assert clients_built == []


def test_batch__through_the_kept_client__reads_what_the_cache_wrote():
    cache.set("store-test", 41, timeout=60)
    batch = Batch()
    at = batch.get("store-test")
    counted = batch.incr("store-test-counter", 60)

    results = batch.execute()

    assert int(results[at]) == 41
    assert results[counted] == 1


def test_hot_mget__reads_what_the_cache_wrote__on_the_threads_own_connection():
    cache.set("hot-a", 5, timeout=60)  # integers are stored raw
    redis_client().set(cache.make_key("hot-b"), b"snapshot", ex=60)  # as snapshots are

    assert hot_mget(["hot-a", "hot-missing", "hot-b"]) == [b"5", None, b"snapshot"]


def test_hot_mget__the_cache_changes__follows_it_and_none_when_not_redis():
    cache.set("hot-a", 5, timeout=60)
    assert hot_mget(["hot-a"]) == [b"5"]
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    with override_settings(CACHES=locmem):
        cache.set("hot-a", 6)
        assert hot_mget(["hot-a"]) is None  # the caller takes the path that works on any cache

    assert hot_mget(["hot-a"]) == [b"5"]  # Redis again, through a new backend and connection
