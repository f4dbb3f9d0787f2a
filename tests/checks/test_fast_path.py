"""The warm check served without DRF and without a round trip (checks.fast, checks.listener):
the same answers as the DRF view, and every change made anywhere seen within a second."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from checks import snapshots
from checks.counters import WINDOW_SECONDS, Counters
from checks.listener import STALE_AFTER, Listener, known
from tests.factories import UserFactory
from toolkit import revisions

pytestmark = pytest.mark.django_db

SECOND = 1.0


def fast_and_slow(client, path, monkeypatch, headers=None):
    """The same request answered by the fast path, then by the DRF view."""
    fast = client.get(path, headers=headers)
    with monkeypatch.context() as patch:
        patch.setattr(known, "healthy", lambda: False)
        slow = client.get(path, headers=headers)
    return fast, slow


def comparable(response) -> tuple:
    body = response.json() if response.content else None
    if isinstance(body, dict):
        body.pop("evaluated_at", None)
    headers = {
        name: value for name, value in response.headers.items() if name not in ("Date", "X-Request-ID")
    }
    return response.status_code, headers, body


@pytest.mark.parametrize(
    ("path", "counts"),
    [
        # acme holds a metered feature (ai-tokens): an answer of every feature reads its count.
        ("customers/acme/entitlements", 1),
        ("customers/acme/entitlements/max-members", 0),
        ("customers/acme/entitlements/ai-tokens", 1),
        ("customers/hooli/entitlements", 0),
    ],
)
@pytest.mark.parametrize("in_memory", [True, False], ids=["memory tier", "redis tier"])
def test_fast_path__same_answer_as_the_drf_view(
    demo, reader, live_revisions, monkeypatch, settings, redis_round_trips, path, counts, in_memory
):
    settings.API_SNAPSHOTS_IN_MEMORY = in_memory
    reader.get(path)  # key and snapshot remembered

    redis_round_trips.count = 0
    fast, slow = fast_and_slow(reader, path, monkeypatch)

    assert fast.status_code == 200
    assert comparable(fast) == comparable(slow)
    # The slow one; the fast one's read of the snapshot; and each one's read of the counts.
    assert redis_round_trips.count == (1 if in_memory else 2) + 2 * counts


def test_fast_path__same_304_as_the_drf_view(demo, reader, live_revisions, monkeypatch):
    etag = reader.get("customers/acme/entitlements/max-members")["ETag"]

    fast, slow = fast_and_slow(
        reader, "customers/acme/entitlements/max-members", monkeypatch, {"HTTP_IF_NONE_MATCH": etag}
    )

    assert fast.status_code == 304
    assert comparable(fast) == comparable(slow)


@pytest.mark.parametrize("path", ["customers/acme/entitlements", "customers/acme/entitlements/max-members"])
def test_headers__an_answer_names_no_allowed_methods__a_405_and_options_do(
    demo, api, reader, live_revisions, monkeypatch, path
):
    reader.get(path)
    fast, slow = fast_and_slow(reader, path, monkeypatch)
    revalidate = {"HTTP_IF_NONE_MATCH": fast["ETag"]}
    fast_304, slow_304 = fast_and_slow(reader, path, monkeypatch, revalidate)

    refused = api.request("PUT", path, {})  # a write key: a read key's PUT is refused before (403)
    options = reader.request("OPTIONS", path)

    assert [r.status_code for r in (fast, slow, fast_304, slow_304)] == [200, 200, 304, 304]
    for answer in (fast, slow, fast_304, slow_304):
        assert "Allow" not in answer.headers
        assert answer["Cache-Control"] == "private, no-cache"
    assert (refused.status_code, refused["Allow"]) == (405, "GET, HEAD, OPTIONS")
    assert (options.status_code, options["Allow"]) == (200, "GET, HEAD, OPTIONS")


@pytest.mark.parametrize(
    ("path", "status"),
    [("customers/ghost/entitlements", 404), ("customers/acme/entitlements/no-such-feature", 404)],
)
def test_errors__answered_by_the_drf_view(demo, reader, live_revisions, path, status):
    reader.get(path)

    response = reader.get(path)

    assert response.status_code == status
    assert response.json()["code"] == "not_found"


def test_no_key_or_unknown_key__401_even_when_warm(demo, reader, api_for, live_revisions):
    reader.get("customers/acme/entitlements")

    assert reader.get("customers/acme/entitlements", key=None).status_code == 401
    assert reader.get("customers/acme/entitlements", key=reader.key[:9] + "x" * 32).status_code == 401


def wait_until(predicate, within: float = SECOND) -> float:
    """Seconds until `predicate()` held; fails after `within`."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < within, "not seen within the time allowed"
        time.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture
def other_process(monkeypatch):
    """Writes made as if by another process: their bumps reach this one only over pub/sub."""
    monkeypatch.setattr(revisions, "_observers", [])


def max_members(reader) -> int:
    return reader.get("customers/acme/entitlements/max-members").json()["value"]


def test_customer_change_elsewhere__seen_within_a_second(demo, api, reader, live_revisions, other_process):
    assert max_members(reader) == 35  # business (25) + two extra-seats units

    api.patch("subscriptions/sub-acme", {"addons": []})

    wait_until(lambda: max_members(reader) == 25)


def test_catalog_change_elsewhere__seen_within_a_second(demo, api, reader, live_revisions, other_process):
    assert max_members(reader) == 35

    assert api.put("items/business/entitlements/max-members", {"value": 5}).status_code == 200

    wait_until(lambda: max_members(reader) == 15)


def test_key_revoked_elsewhere__refused_within_a_second(
    demo, api_for, live_revisions, other_process, django_capture_on_commit_callbacks
):
    from api import services
    from api.models import APIKey

    client = api_for(UserFactory(), "read")
    assert client.get("customers/acme/entitlements").status_code == 200
    assert client.get("customers/acme/entitlements").status_code == 200  # fast
    key = APIKey.objects.get(prefix=client.key.split(".")[0])

    with django_capture_on_commit_callbacks(execute=True):
        services.api_key_revoke(api_key=key, actor=None, reason="Leaked in a log", source="shell")

    wait_until(lambda: client.get("customers/acme/entitlements").status_code == 401)


def test_reconnect__snapshots_of_the_old_subscription_checked_again(
    demo, reader, live_revisions, redis_round_trips
):
    reader.get("customers/vandelay/entitlements")
    known.start_epoch(known.catalog, known.keys)  # as after a reconnect

    redis_round_trips.count = 0
    reader.get("customers/vandelay/entitlements")
    reader.get("customers/vandelay/entitlements")

    assert redis_round_trips.count == 1  # checked once, then trusted again


def test_snapshot_past_its_valid_until__never_served_from_memory(demo, reader, live_revisions):
    from checks.snapshots import remembered

    reader.get("customers/streamfan/entitlements")
    snapshot = remembered("streamfan")
    assert snapshot is not None and snapshot.valid_until is not None

    assert snapshot.trusted(snapshot.valid_until - 1)
    assert not snapshot.trusted(snapshot.valid_until)


def test_throttle__fast_checks_count__over_the_limit_429(demo, api_for, live_revisions):
    client = api_for(UserFactory(), "read", rate_limit=3)

    answers = [client.get("customers/acme/entitlements").status_code for _ in range(5)]

    assert answers == [200, 200, 200, 429, 429]
    assert client.last["Retry-After"]


def test_counts_of_fast_checks__reach_the_table(demo, reader, live_revisions):
    from api.models import CheckCount
    from checks.tasks import flush_check_counts

    reader.get("customers/acme/entitlements/max-members")  # slow: remembered from now on
    for _ in range(4):
        reader.get("customers/acme/entitlements/max-members")  # fast
        reader.get("customers/acme/entitlements/data-export")  # fast: both sent in one command
    reader.get("customers/acme/entitlements/no-such-feature")  # 404: counted, then taken back

    flush_check_counts()

    assert CheckCount.objects.get(feature_key="max-members").count == 5
    assert CheckCount.objects.get(feature_key="data-export").count == 4
    assert not CheckCount.objects.filter(feature_key="no-such-feature").exists()


def test_last_used__stamped_by_fast_checks(demo, reader, live_revisions):
    from api.models import APIKey
    from checks.tasks import flush_check_counts

    reader.get("customers/acme/entitlements")
    flush_check_counts()
    APIKey.objects.filter(prefix=reader.key.split(".")[0]).update(last_used_at=None)
    reader.get("customers/acme/entitlements")  # fast

    flush_check_counts()

    assert APIKey.objects.get(prefix=reader.key.split(".")[0]).last_used_at is not None


def test_memory_snapshot_dropped_when_its_customer_moves(demo, reader, live_revisions):
    reader.get("customers/acme/entitlements")
    assert snapshots.remembered("acme") is not None

    revisions.bump(revisions.customer_key("acme"))

    assert snapshots.remembered("acme") is None


def test_listener_stalled__trust_ends_within_a_second__checks_ask_redis_again(
    demo, reader, live_revisions, monkeypatch, redis_round_trips
):
    reader.get("customers/vandelay/entitlements")
    # Nothing more arrives on the subscription: no pong, no bump (a connection that hangs).
    monkeypatch.setattr(Listener, "_handle", staticmethod(lambda message: None))

    waited = wait_until(lambda: not known.healthy(), within=STALE_AFTER + 0.5)
    redis_round_trips.count = 0
    assert reader.get("customers/vandelay/entitlements").status_code == 200

    assert waited <= STALE_AFTER + 0.1
    assert redis_round_trips.count == 1


def test_throttle_counts__a_send_in_progress_still_counts__a_failed_one_is_kept():
    from checks.store import Batch

    counters, window = Counters(), int(time.time()) // WINDOW_SECONDS
    for _ in range(3):
        counters.request("tHrOtTle", window * WINDOW_SECONDS)
    drained = counters.drain()  # on its way to Redis

    assert counters.window_count("tHrOtTle", window) == 3
    counters.restore(drained)  # the send failed
    assert counters.window_count("tHrOtTle", window) == 3

    drained = counters.drain()
    batch = Batch()
    slots = counters.queue(batch, drained)
    counters.received(slots, batch.execute(), drained)
    assert counters.window_count("tHrOtTle", window) == 3  # now Redis's own count
    assert not counters.pending and not counters.inflight


@pytest.mark.parametrize("kept", [False, True], ids=["read once: span found", "kept: spans parsed"])
def test_snapshot__spans_cut_each_answer_out_of_the_rendered_body__also_after_redis(kept):
    import orjson

    answers = {
        "a-switch": {"kind": "switch", "enabled": True, "value": True, "valid_until": None},
        'x"b-custom': {"kind": "switch", "value": False, "valid_until": None},  # ends like the next
        "xb-custom": {"kind": "switch", "value": 7, "valid_until": None},
        "b-custom": {
            "kind": "custom",
            "value": {"tiers": ["x", "}{"], "valid_until": None},  # its own, not the answer's
            "valid_until": "2030-01-01T00:00:00Z",
        },
    }
    spans: dict = {}
    body = snapshots._render(answers, 0, spans)
    archived = snapshots._render({"c-old": {"kind": "switch", "valid_until": None}}, 1, spans)
    snapshot = snapshots.Snapshot("acme", (1, 2), True, None, body, archived, orjson.dumps(spans))
    again = snapshots.Snapshot.loads("acme", snapshot.dumps())

    assert body == orjson.dumps(answers)
    for copy in (snapshot, again):
        copy.epoch = 7 if kept else 0  # confirmed in memory, or read for one check
        for key, answer in answers.items():
            assert orjson.loads(copy.answer(key)[0]) == answer
        assert copy.answer("b-custom")[1] == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
        assert copy.answer("a-switch")[1] is None
        assert orjson.loads(copy.answer("c-old")[0]) == {"kind": "switch", "valid_until": None}
        assert copy.answer("nope") is None
        assert copy.answer("custom") is None


@pytest.mark.parametrize(
    "stored",
    [
        b"",
        b'{"f":4,"r":[1,2],"x":true,"v":null}',
        b'{"f":4,"r":[1,2],"x":true,"v":null}\n{}\n{}',
        b"not json\n{}\n{}\n{}",
        b'{"f":2,"r":[1,2],"x":true,"v":null}\n{}\n{}\n{}',
        b'{"f":4,"r":[1],"x":true,"v":null}\n{}\n{}\n{}',
    ],
    ids=["empty", "header only", "no archived part", "header not JSON", "older format", "one revision"],
)
def test_snapshot__stored_value_cut_short_or_not_ours__not_used(stored):
    assert snapshots.Snapshot.loads("acme", stored) is None


def test_snapshot__stored_value__cut_at_its_first_three_newlines():
    header = b'{"f":4,"r":[4,5],"x":true,"v":null}'
    loaded = snapshots.Snapshot.loads("acme", header + b'\n{"s":1}\n{"b":2}\n{"a":3}\n{"later":4}')

    assert (loaded.revisions, loaded.spans, loaded.body) == ((4, 5), b'{"s":1}', b'{"b":2}')
    assert loaded.archived == b'{"a":3}\n{"later":4}'  # the rest, as it is


def test_checks__matched_first_of_all__still_named_and_in_the_schema(client):
    from django.urls import resolve, reverse

    path = "/api/v1/customers/acme/entitlements/max-members"
    match = resolve(path)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert match.namespace == ""  # the top-level route: no include walked before it
    assert (
        reverse("api:customer-entitlement", kwargs={"external_id": "acme", "feature_key": "max-members"})
        == path
    )
    assert "get" in schema["paths"]["/api/v1/customers/{external_id}/entitlements/{feature_key}"]
    assert "get" in schema["paths"]["/api/v1/customers/{external_id}/entitlements"]


@pytest.mark.parametrize(
    "path", ["customers/acme/entitlements", "customers/acme/entitlements/ai-tokens"], ids=["all", "metered"]
)
def test_fast_path__its_redis_connection_dropped__the_drf_view_answers(
    demo, reader, live_revisions, settings, path
):
    from checks.store import _line
    from toolkit.redis import redis_client

    settings.API_SNAPSHOTS_IN_MEMORY = False  # every check reads Redis on the thread's own connection
    reader.get(path)  # the key remembered, the snapshot stored
    _backend, connection = _line()
    connection.send_command("CLIENT", "ID")
    redis_client().client_kill_filter(_id=connection.read_response())  # as a proxy or failover would

    response = reader.get(path)

    assert response.status_code == 200
    assert response.json()["customer"] == "acme"
