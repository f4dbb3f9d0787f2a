"""How often each feature is checked, per day: counted in Redis within the
check's one round trip, moved into CheckCount by `checks.tasks.flush_check_counts`, exactly once."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.core.cache import cache
from django.utils import timezone

from api.models import APIKey, CheckCount, CheckCountBatch
from checks import counting
from checks.tasks import flush_check_counts
from toolkit.redis import redis_client

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    today = timezone.now().astimezone(UTC).date()
    return dict(CheckCount.objects.filter(day=today).values_list("feature_key", "count"))


def test_checks__counted_then_flushed_per_feature_and_day(demo, reader):
    for _ in range(3):
        reader.get("customers/acme/entitlements/max-members")
    reader.get("customers/globex/entitlements/data-export")

    assert counts() == {}  # nothing written on the hot path
    result = flush_check_counts()

    assert counts() == {"max-members": 3, "data-export": 1}
    assert result == {"batches": 1, "checks": 4}


def test_check_of_every_feature__counts_once_for_each_active_feature(demo, reader):
    reader.get("customers/acme/entitlements")
    reader.get("customers/acme/entitlements/4k-streaming")

    flush_check_counts()

    flushed = counts()
    assert flushed["4k-streaming"] == 2
    assert flushed["max-members"] == 1
    assert len(flushed) == 12  # every active feature of the demo


def test_304__counts_as_a_check__errors_do_not(demo, reader):
    etag = reader.get("customers/acme/entitlements/max-members")["ETag"]
    reader.get("customers/acme/entitlements/max-members", headers={"HTTP_IF_NONE_MATCH": etag})
    reader.get("customers/ghost/entitlements/max-members")  # 404
    reader.get("customers/acme/entitlements/no-such-feature")  # 404
    reader.get("customers/acme/entitlements/max-members", key="abcdefgh.bad")  # 401

    flush_check_counts()

    assert counts() == {"max-members": 2}


def test_flush__twice__adds_only_new_checks(demo, reader):
    reader.get("customers/acme/entitlements/max-members")
    flush_check_counts()
    flush_check_counts()
    reader.get("customers/acme/entitlements/max-members")
    flush_check_counts()

    assert counts() == {"max-members": 2}


def test_flush__worker_died_after_commit_before_cleanup__not_counted_twice(demo, reader, monkeypatch):
    reader.get("customers/acme/entitlements/max-members")
    client = redis_client()
    real_delete = client.__class__.delete

    # The first flush dies right after its transaction committed.
    def die(self, *names):
        raise SystemExit("worker killed")

    monkeypatch.setattr(client.__class__, "delete", die)
    with pytest.raises(SystemExit):
        counting.flush()
    monkeypatch.setattr(client.__class__, "delete", real_delete)
    assert counts() == {"max-members": 1}

    counting.flush()  # the next run finds the batch already applied

    assert counts() == {"max-members": 1}
    assert CheckCountBatch.objects.count() == 1
    assert client.smembers(cache.make_key(counting.BATCHES_KEY)) == set()


def test_flush__worker_died_before_commit__counted_by_the_next_run(demo, reader, monkeypatch):
    reader.get("customers/acme/entitlements/max-members")

    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(counting, "_apply", die)
    with pytest.raises(SystemExit):
        counting.flush()
    monkeypatch.undo()
    assert counts() == {}

    counting.flush()

    assert counts() == {"max-members": 1}


def test_flush__copies_keys_last_used(demo, reader):
    prefix = reader.key.split(".")[0]
    assert APIKey.objects.get(prefix=prefix).last_used_at is None

    reader.get("customers/acme/entitlements")
    flush_check_counts()

    last_used = APIKey.objects.get(prefix=prefix).last_used_at
    assert last_used is not None
    assert abs((timezone.now() - last_used).total_seconds()) < 60
