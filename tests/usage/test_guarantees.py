"""The promises of counted usage (docs/usage.md), shown over real HTTP against two gunicorn
processes on the real PostgreSQL and Redis: a hard limit is never exceeded, an idempotency key
consumes once, a killed process loses nothing it accepted, and an emptied Redis is rebuilt
before it answers again without letting the limit slip."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db.models import Sum

from tests import servers
from tests.api.conftest import make_key
from toolkit.redis import redis_client
from usage.models import Consumption

CONSUMERS = 32
ATTEMPTS = 20  # each consumer's most: all of them together could take 640 units


@pytest.fixture
def two_processes(transactional_db, restore_roles, tmp_path):
    """The demo catalogue, two web processes serving it, and a read-scope key of an application."""
    call_command("seed_demo", verbosity=0, stdout=StringIO())
    user = User.objects.create_user("metering-app")
    key = make_key(user, "read", rate_limit=10_000_000)
    processes = [servers.start(tmp_path, "web-a"), servers.start(tmp_path, "web-b")]
    yield processes, key
    for process in processes:
        process.stop()


def consume(url: str, key: str, customer: str, body: dict, feature: str = "api-calls"):
    return servers.post(url, f"customers/{customer}/entitlements/{feature}/consume", body, key)


def counted(customer: str, feature: str = "api-calls") -> int:
    rows = Consumption.objects.filter(customer__external_id=customer, feature__key=feature)
    return rows.aggregate(total=Sum("quantity"))["total"] or 0


def empty_redis() -> int:
    """Delete every key of this test run (what FLUSHDB does to a Redis of our own)."""
    client = redis_client()
    keys = list(client.scan_iter(match=f"{cache.make_key('')}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def hammer(processes, key: str, customer: str, *, during=None) -> list[tuple[int, dict | None]]:
    """CONSUMERS threads, alternating between the processes, each consuming one unit at a time
    until refused (ATTEMPTS at most); `during()` runs again and again on this thread meanwhile.
    Every answer, in no order."""
    barrier = threading.Barrier(CONSUMERS + 1)
    answers: list[tuple[int, dict | None]] = []
    lock = threading.Lock()

    def consumer(number: int) -> None:
        url = processes[number % len(processes)].url
        barrier.wait(timeout=60)
        for _ in range(ATTEMPTS):
            status, body = consume(url, key, customer, {"quantity": 1})
            with lock:
                answers.append((status, body))
            if status != 200 or not body["allowed"]:
                return

    with ThreadPoolExecutor(CONSUMERS) as pool:
        futures = [pool.submit(consumer, number) for number in range(CONSUMERS)]
        barrier.wait(timeout=60)
        while during is not None and not all(future.done() for future in futures):
            during()
        for future in futures:
            future.result(timeout=300)
    return answers


def test_32_consumers_on_two_processes_get_exactly_the_last_100_units(two_processes):
    processes, key = two_processes
    status, body = consume(processes[0].url, key, "northwind", {"quantity": 900})
    assert (status, body["allowed"], body["remaining"]) == (200, True, 100)

    answers = hammer(processes, key, "northwind")

    assert {status for status, _ in answers} == {200}
    allowed = [body for _, body in answers if body["allowed"]]
    assert len(allowed) == 100
    assert sorted(body["used"] for body in allowed) == list(range(901, 1001))
    assert counted("northwind") == 1000
    for process in processes:
        status, body = consume(process.url, key, "northwind", {"quantity": 1})
        assert (status, body["allowed"], body["used"], body["remaining"]) == (200, False, 1000, 0)


def test_one_idempotency_key_sent_32_times_to_two_processes_consumes_once(two_processes):
    processes, key = two_processes
    barrier = threading.Barrier(CONSUMERS)
    body = {"quantity": 7, "idempotency_key": "invoice-run-2026-12-07"}

    def send(number: int):
        barrier.wait(timeout=60)
        return consume(processes[number % 2].url, key, "contoso", body)

    with ThreadPoolExecutor(CONSUMERS) as pool:
        answers = list(pool.map(send, range(CONSUMERS)))

    assert {status for status, _ in answers} == {200}
    assert {(a["allowed"], a["used"], a["remaining"]) for _, a in answers} == {(True, 7, 99_993)}
    assert counted("contoso") == 7
    rows = Consumption.objects.filter(idempotency_key="invoice-run-2026-12-07")
    assert [(row.quantity, row.used_after) for row in rows] == [(7, 7)]
    # Later retries, on either process, still answer the first answer.
    for process in processes:
        status, again = consume(process.url, key, "contoso", body)
        assert (status, again["used"]) == (200, 7)
    assert counted("contoso") == 7


def test_a_process_killed_mid_way_loses_nothing_it_accepted(two_processes):
    processes, key = two_processes
    doomed, survivor = processes
    accepted: list[str] = []
    unanswered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consumer(number: int) -> None:
        for round_ in range(10_000):
            if stop.is_set():
                return
            idempotency_key = f"req-{number}-{round_}"
            status, body = consume(
                doomed.url, key, "contoso", {"quantity": 1, "idempotency_key": idempotency_key}
            )
            with lock:
                if status == 200 and body["allowed"]:
                    accepted.append(idempotency_key)
                elif status == 0:
                    unanswered.append(idempotency_key)
                    return

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(consumer, number) for number in range(16)]
        deadline = time.monotonic() + 60
        while len(accepted) < 300:
            assert time.monotonic() < deadline, "the doomed process answered too little"
            time.sleep(0.01)
        doomed.kill()
        stop.set()
        for future in futures:
            future.result(timeout=120)

    # Everything a caller was told "allowed" is in PostgreSQL.
    recorded = set(
        Consumption.objects.filter(customer__external_id="contoso").values_list("idempotency_key", flat=True)
    )
    assert set(accepted) <= recorded
    assert unanswered, "the kill should have cut some requests off"
    # The callers whose requests were cut off retry on the other process: each is counted once,
    # whether or not its first attempt had reached Redis or PostgreSQL.
    for idempotency_key in unanswered:
        status, body = consume(
            survivor.url, key, "contoso", {"quantity": 1, "idempotency_key": idempotency_key}
        )
        assert (status, body["allowed"]) == (200, True)
    keys = list(
        Consumption.objects.filter(customer__external_id="contoso").values_list("idempotency_key", flat=True)
    )
    assert len(keys) == len(set(keys))
    assert set(accepted) | set(unanswered) <= set(keys)
    # What Redis counts is what PostgreSQL holds (a cut-off attempt that reached Redis was made
    # good by its retry).
    status, body = consume(survivor.url, key, "contoso", {"quantity": 1})
    assert body["used"] == counted("contoso")


def test_redis_emptied_under_load_is_rebuilt_and_the_limit_holds(two_processes):
    processes, key = two_processes
    consume(processes[0].url, key, "northwind", {"quantity": 700})
    emptied: list[int] = []

    def empty_it() -> None:
        # Every few milliseconds, while consumptions are in flight between Redis and PostgreSQL.
        emptied.append(empty_redis())
        time.sleep(0.003)

    answers = hammer(processes, key, "northwind", during=empty_it)

    assert sum(1 for count in emptied if count) > 10, "Redis was not emptied while the consumers ran"
    assert {status for status, _ in answers} == {200}
    assert sum(1 for _, body in answers if body["allowed"]) == 300
    assert counted("northwind") == 1000
    empty_redis()
    status, body = consume(processes[1].url, key, "northwind", {"quantity": 1})
    assert (status, body["allowed"], body["used"]) == (200, False, 1000)
