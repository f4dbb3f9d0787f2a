"""A check's Redis round trip sent before the middleware runs (checks.middleware, checks.store): the
same answers in one round trip, and a reply the request did not read never answers a later one.
Also a Redis that stops answering: the hot read fails within the socket timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from checks import snapshots, store
from toolkit import revisions
from toolkit.revisions import customer_key

pytestmark = pytest.mark.django_db

ONE = "customers/acme/entitlements/max-members"


@pytest.fixture
def redis_tier(settings):
    """Every check served from Redis, as the benchmark's Redis tier: nothing kept in memory."""
    settings.API_SNAPSHOTS_IN_MEMORY = False


@pytest.fixture
def sent_ahead(monkeypatch):
    """The keys of every read sent ahead."""
    sent = []
    original = store.send_ahead

    def recording(keys):
        sent.append(list(keys))
        return original(keys)

    monkeypatch.setattr(store, "send_ahead", recording)
    return sent


def acme_keys() -> list[str]:
    return [customer_key("acme"), snapshots.snapshot_key("acme")]


def test_check_from_redis__its_read_sent_first__one_round_trip_and_the_same_answer(
    demo, reader, live_revisions, redis_tier, sent_ahead, redis_round_trips
):
    first = reader.get(ONE)  # builds the snapshot and stores it in Redis
    sent_ahead.clear()
    redis_round_trips.count = 0

    response = reader.get(ONE)

    assert response.status_code == 200
    assert response.json() == first.json()
    assert sent_ahead == [acme_keys()]
    assert redis_round_trips.count == 1


def test_check_from_memory__sends_nothing_ahead(demo, reader, live_revisions, sent_ahead, redis_round_trips):
    reader.get(ONE)
    sent_ahead.clear()
    redis_round_trips.count = 0

    assert reader.get(ONE).status_code == 200
    assert sent_ahead == []
    assert redis_round_trips.count == 0


def test_check_whose_memory_snapshot_is_out_of_date__sends_its_read_ahead(
    demo, reader, live_revisions, sent_ahead
):
    reader.get(ONE)
    sent_ahead.clear()
    revisions.bump(revisions.CATALOG_KEY)  # the snapshot in memory no longer holds

    assert reader.get(ONE).status_code == 200
    assert sent_ahead == [acme_keys()]


def test_not_a_check_or_not_a_known_key__sends_nothing_ahead(
    demo, reader, live_revisions, redis_tier, sent_ahead
):
    reader.get(ONE)  # the key is known from here on
    sent_ahead.clear()

    assert reader.get("customers/acme").status_code == 200  # a read key may read a customer
    assert reader.get(ONE, key="NOPREFIX.secret").status_code == 401
    assert reader.request("HEAD", ONE).status_code == 200
    assert sent_ahead == []


def test_refused_key__the_unread_reply_is_dropped__a_later_read_sees_the_new_value(
    demo, reader, live_revisions, redis_tier, sent_ahead
):
    reader.get(ONE)
    prefix = reader.key.partition(".")[0]
    sent_ahead.clear()

    assert reader.get(ONE, key=f"{prefix}.not-the-secret").status_code == 401
    assert sent_ahead == [acme_keys()]  # sent, and never read by the view
    revisions.bump(customer_key("acme"))
    moved = revisions.read(customer_key("acme"))[0]

    assert int(store.hot_mget(acme_keys())[0]) == moved


def test_catalog_moved_after_the_read_was_sent__its_reply_not_used(demo, reader, live_revisions, redis_tier):
    reader.get(ONE)
    snapshots.read_ahead("acme")

    revisions.bump(revisions.CATALOG_KEY)  # every stored snapshot is now out of date

    assert snapshots.read_current("acme", timezone.now()) is None
    cache.set("after", 7, timeout=60)
    assert store.hot_mget(["after"]) == [b"7"]  # the dropped reply did not answer this


def test_read_sent_ahead__dropped_by_settle__the_next_read_asks_again():
    cache.set("ahead-a", 1, timeout=60)
    assert store.send_ahead(["ahead-a"])
    store.settle()
    cache.set("ahead-a", 2, timeout=60)

    assert store.hot_mget(["ahead-a"]) == [b"2"]


@pytest.fixture
def silent_redis():
    """A server that answers redis-py's handshake (HELLO, then +OK to each command) and then
    never answers again: a Redis that has stopped responding."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(0.1)
            while not stop.is_set():
                try:
                    data = connection.recv(65536)
                except TimeoutError:
                    continue
                if not data or b"MGET" in data:
                    stop.wait(timeout=10)  # then hang up: a client with no limit fails the test, not hangs
                    return
                hello = b"%1\r\n$5\r\nproto\r\n:3\r\n"  # a RESP3 map: {"proto": 3}
                connection.sendall(
                    b"".join(hello if b"HELLO" in part else b"+OK\r\n" for part in data.split(b"*")[1:])
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{port}/0"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_redis_stops_answering__the_hot_read_fails_within_the_socket_timeout(silent_redis):
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": silent_redis,
            "OPTIONS": {"socket_timeout": 0.3},
        }
    }
    with override_settings(CACHES=caches):
        started = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            store.hot_mget(["anything"])
        assert time.monotonic() - started < 3
