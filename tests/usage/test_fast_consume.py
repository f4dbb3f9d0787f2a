"""The warm consume (usage.api.fast): the DRF view's answer, byte for byte, with Redis asked
once — the consumption itself — and the DRF view for everything it does not take."""

from __future__ import annotations

import pytest

from checks.listener import known
from usage.models import Consumption

pytestmark = pytest.mark.django_db

PATH = "customers/northwind/entitlements/api-calls/consume"


def comparable(response) -> tuple:
    headers = {
        name: value for name, value in response.headers.items() if name not in ("Date", "X-Request-ID")
    }
    return response.status_code, headers, response.content


def slow(client, body, monkeypatch):
    """The same request answered by the DRF view."""
    with monkeypatch.context() as patch:
        patch.setattr(known, "healthy", lambda: False)
        return client.post(PATH, body, reason=None)


def test_a_warm_consume_asks_redis_once_and_answers_as_the_drf_view(
    demo, reader, live_revisions, monkeypatch, redis_round_trips
):
    reader.get("customers/northwind/entitlements/api-calls")  # the key and the snapshot remembered
    reader.post(PATH, {"quantity": 1}, reason=None)  # the script loaded into Redis

    redis_round_trips.count = 0
    fast = reader.post(PATH, {"quantity": 5, "idempotency_key": "job-1"}, reason=None)
    assert redis_round_trips.count == 1
    fast_again = reader.post(PATH, {"quantity": 5, "idempotency_key": "job-1"}, reason=None)
    slow_again = slow(reader, {"quantity": 5, "idempotency_key": "job-1"}, monkeypatch)
    fresh_slow = slow(reader, {"quantity": 5, "idempotency_key": "job-2"}, monkeypatch)

    assert fast.json()["used"] == 6
    assert comparable(fast_again) == comparable(slow_again)
    assert fast_again["Idempotent-Replayed"] == "true"
    assert fast.headers.keys() == fresh_slow.headers.keys()
    assert fresh_slow.json() == fast.json() | {"used": 11, "remaining": 989}
    assert Consumption.objects.count() == 3


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": 0},
        {"quantity": "5"},
        {"quantity": 2**40},
        {"quantity": 1, "idempotency_key": "with space"},
        {"quantity": 1, "extra": True},
        [1],
    ],
)
def test_a_body_the_fast_path_does_not_take_gets_the_drf_views_400(demo, reader, live_revisions, body):
    reader.get("customers/northwind/entitlements/api-calls")

    response = reader.post(PATH, body, reason=None)

    assert response.status_code == 400
    assert Consumption.objects.count() == 0


def test_not_metered_unknown_or_not_granted_answers_as_the_drf_view(
    demo, reader, live_revisions, monkeypatch
):
    reader.get("customers/acme/entitlements")
    for path in (
        "customers/acme/entitlements/max-members/consume",
        "customers/acme/entitlements/nope/consume",
        "customers/acme/entitlements/api-calls/consume",
    ):
        fast = reader.post(path, {"quantity": 1}, reason=None)
        with monkeypatch.context() as patch:
            patch.setattr(known, "healthy", lambda: False)
            drf = reader.post(path, {"quantity": 1}, reason=None)
        assert comparable(fast) == comparable(drf), path
    assert Consumption.objects.count() == 0
