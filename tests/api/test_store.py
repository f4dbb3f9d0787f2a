"""The hot path's Redis client (api.store): made once per cache backend, not once per check
(BENCHMARKS.md, fix A: redis-py's constructor cost a warm check about a tenth of its time)."""

from __future__ import annotations

import pytest
import redis
from django.core.cache import cache

from api.store import Batch, redis_client

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
