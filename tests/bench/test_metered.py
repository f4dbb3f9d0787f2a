"""The benchmark's metered measurements (bench/measure.py) on a small benchmark data set: the
hard-limit race against two real web processes, and the in-process counts of a consume and of a
metered check."""

from __future__ import annotations

from io import StringIO

import pytest
import redis
from django.contrib.auth.models import User
from django.db.models import Sum

import checks.snapshots
from bench import measure
from bench.seed import HARD_METERED, RACE_CUSTOMER, RACE_LIMIT, populate
from tests import servers
from tests.api.conftest import make_key
from usage.models import Consumption

CUSTOMERS, METERED = 3, 4


def seed_small() -> None:
    populate(customers=CUSTOMERS, scheduled=0, metered=METERED, out=StringIO(), verbosity=0)


def used(customer: str, feature: str = HARD_METERED) -> int:
    rows = Consumption.objects.filter(customer__external_id=customer, feature__key=feature)
    return rows.aggregate(total=Sum("quantity"))["total"] or 0


@pytest.fixture
def two_processes(transactional_db, restore_roles, tmp_path):
    """The benchmark's data (a few customers), two web processes serving it, and a read key."""
    seed_small()
    key = make_key(User.objects.get(username="bench-reader"), "read", rate_limit=10_000_000)
    processes = [servers.start(tmp_path, "web-a"), servers.start(tmp_path, "web-b")]
    yield [process.url for process in processes], key
    for process in processes:
        process.stop()


def test_hard_limit_race__two_processes__exactly_the_units_left_and_the_rows_add_up(two_processes):
    urls, key = two_processes

    race = measure.hard_limit_race(
        urls=urls, key=key, customer=RACE_CUSTOMER, feature=HARD_METERED, consumers=8, last=20
    )

    assert race["limit"] == RACE_LIMIT
    # Each of the 8 consumers is refused once; everyone else was allowed one unit.
    assert (race["allowed"], race["refused"], race["errors"], race["attempted"]) == (20, 8, 0, 28)
    assert race["each_count_once"]
    assert (race["rows_sum"], race["rows"]) == (RACE_LIMIT, 21)  # the 980 brought in first, then 20
    assert race["exact"]
    assert [(a["status"], a["allowed"], a["used"]) for a in race["after"]] == [(200, False, RACE_LIMIT)] * 2
    assert used(RACE_CUSTOMER) == RACE_LIMIT
    # Nothing is left to race for.
    with pytest.raises(SystemExit, match="fewer than 20 are left"):
        measure.hard_limit_race(urls=urls, key=key, customer=RACE_CUSTOMER, feature=HARD_METERED, last=20)


@pytest.fixture
def counting_undone(monkeypatch):
    """bench.measure wraps redis-py and the check's MGET to count them, once per process (the
    benchmark's): put the originals back after the test."""
    monkeypatch.setattr(measure, "_patched", False)
    for owner, name in (
        (redis.connection.AbstractConnection, "send_packed_command"),
        (redis.Redis, "execute_command"),
        (redis.client.Pipeline, "_execute_pipeline"),
        (checks.snapshots, "hot_mget"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))


@pytest.mark.django_db
def test_metered_costs__consumes_and_metered_checks__counted_and_consumed(counting_undone):
    seed_small()
    key = make_key(User.objects.get(username="bench-reader"), "read", rate_limit=10_000_000)
    customers = ["meter-000000", "meter-000001"]

    costs = measure.metered_costs(key, customers, HARD_METERED)

    assert set(costs) == {
        "metered check: cold (customer changed)",
        "metered check: warm, process memory",
        "all features of a metered customer: warm, process memory",
        "metered check: warm, Redis tier (no process memory)",
        "consume: warm, process memory",
        "consume with an idempotency key: warm, process memory",
        "consume: warm, Redis tier (no process memory)",
        "consume: count lost in Redis (rebuilt from the rows)",
    }
    # A warm check of a metered feature, or of all a metered customer's features, reads the
    # counts, and only them: one MGET.
    for name in (
        "metered check: warm, process memory",
        "all features of a metered customer: warm, process memory",
    ):
        warm = costs[name]
        assert (warm["queries"], warm["round_trips"], warm["by_command"]) == (0, 1, {"MGET": 1}), name
    # Every consume wrote its row; the lost count was rebuilt from them before counting.
    consumed = costs["consume: warm, process memory"]
    assert consumed["samples"] == 2 and consumed["queries"] >= 1 and consumed["round_trips"] >= 1
    rebuilt = costs["consume: count lost in Redis (rebuilt from the rows)"]
    assert rebuilt["queries"] > consumed["queries"]
    assert [used(c) for c in customers] == [4, 4]
