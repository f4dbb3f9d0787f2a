"""Writes racing each other over real HTTP, as a billing sync with several workers sends them:
a live server on PostgreSQL, 16 threads at once. Each write answers its real result (200, 201,
or a refusal it would get alone), never a false "already exists", "no such subscription" or 500."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tests.api.conftest import REASON, make_key

THREADS = 16


@pytest.fixture
def racing(transactional_db, restore_roles, live_server):
    """The demo catalogue behind a live server, and `send(requests)`: each (method, path, body)
    sent at the same moment from its own thread; the answers' (status, body) in order."""
    call_command("seed_demo", verbosity=0, stdout=StringIO())
    key = make_key(User.objects.get(username="admin"), "write", rate_limit=1_000_000)
    barrier = threading.Barrier(THREADS)

    def one(method: str, path: str, body: object) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Api-Key {key}",
                "X-Change-Reason": REASON,
                "Content-Type": "application/json",
            },
        )
        barrier.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def send(requests: list[tuple[str, str, object]]) -> list[tuple[int, dict]]:
        assert len(requests) == THREADS
        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(lambda r: one(*r), requests))

    return send


def test_concurrent_puts__new_subscription__one_created_the_others_replace_it(racing):
    body = {"customer": "acme", "plan": "business", "status": "active"}

    answers = racing([("PUT", "subscriptions/sub-new", body)] * THREADS)

    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 1, 200: THREADS - 1}, answers
    assert all(answer["plan"] == "business" for _, answer in answers)


def test_concurrent_puts_and_patches__one_subscription__each_answers_its_own_result(racing):
    requests = [
        ("PUT", "subscriptions/sub-acme", {"customer": "acme", "plan": "business", "status": "active"})
        if n % 2
        else (
            "PATCH",
            "subscriptions/sub-acme",
            {"status": "past_due", "past_due_since": "2030-01-01T00:00:00Z"},
        )
        for n in range(THREADS)
    ]

    answers = racing(requests)

    assert [status for status, _ in answers] == [200] * THREADS, answers


def test_concurrent_put_and_patches__subscription_being_created__created_then_changed(racing):
    put = ("PUT", "subscriptions/sub-new", {"customer": "acme", "plan": "business"})
    patch = (
        "PATCH",
        "subscriptions/sub-new",
        {"status": "past_due", "past_due_since": "2030-01-01T00:00:00Z"},
    )
    requests = [put, patch] * (THREADS // 2)

    answers = racing(requests)

    statuses = Counter(status for status, _ in answers)
    assert statuses[201] == 1
    assert set(statuses) <= {200, 201, 404}, answers  # a PATCH arriving before the create: 404
    assert all(a["detail"] == "No subscription sub-new." for s, a in answers if s == 404)


def test_concurrent_puts__new_customer__one_created_the_others_replace_it(racing):
    answers = racing([("PUT", "customers/newco", {"name": "NewCo", "country": "DE"})] * THREADS)

    assert Counter(status for status, _ in answers) == {201: 1, 200: THREADS - 1}, answers


def test_concurrent_posts__overlapping_overrides__exactly_one_lands(racing):
    body = {
        "feature": "4k-streaming",
        "value": True,
        "valid_from": "2030-06-06T00:00:00Z",
        "valid_until": "2030-06-09T00:00:00Z",
    }

    answers = racing([("POST", "subscriptions/sub-acme/overrides", body)] * THREADS)

    statuses = Counter(status for status, _ in answers)
    assert statuses[201] == 1, answers
    assert set(statuses) <= {201, 400, 409}, answers
