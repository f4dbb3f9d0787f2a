"""Scheduled changes with real Celery workers on Redis (not eager mode): on time, exactly
once with workers racing, and none lost when a worker is killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from audit.bulk import bulk_create_audited
from audit.models import ScheduledChange
from audit.scheduling import BATCH, schedule_change
from audit.tasks import sweep_scheduled_changes
from subscriptions.models import Customer
from toolkit.change_context import change_context

pytestmark = pytest.mark.celery


@pytest.fixture
def workers(transactional_db, restore_roles, tmp_path):
    """Start Celery worker processes on this run's queue and database; all are killed after."""
    started: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "ENTITLE_TEST_RUN": settings.ENTITLE_TEST_RUN,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "ENTITLE_SWEEP_SECONDS": "1",
    }

    def start(*, beat: bool = False) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-n",
            f"w{len(started)}-{settings.ENTITLE_TEST_RUN}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            args += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
        process = subprocess.Popen(args, env=env, start_new_session=True, cwd=settings.BASE_DIR)
        started.append(process)
        return process

    yield start
    for process in started:
        kill(process)


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for(condition, *, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s")


def _author():
    return User.objects.create_superuser("planner", password="x")


def _customer_changes(author, count: int) -> list[ScheduledChange]:
    """`count` due changes, each creating its own customer: a double application would show as
    a second history row of the change's status. Stored in bulk, with their history, as
    `schedule_change` would store them one by one (several sweep batches' worth)."""
    changes = [
        ScheduledChange(
            method="PUT",
            path=f"/api/v1/customers/sched-{n}",
            body={"name": f"Scheduled {n}"},
            effective_at=timezone.now(),
            reason=f"Import batch {n}",
            created_by=author,
        )
        for n in range(count)
    ]
    with change_context(actor=author, reason="Test setup: changes to sweep", source="shell"):
        return bulk_create_audited(ScheduledChange, changes)


def _assert_each_applied_once(changes):
    ids = [c.pk for c in changes]
    assert ScheduledChange.objects.filter(pk__in=ids, status="applied").count() == len(ids)
    # One status change to "applied" per change, no more, in the history of every one.
    applied = ScheduledChange.history.filter(id__in=ids, status="applied")
    assert applied.count() == len(ids)
    assert Customer.objects.filter(external_id__startswith="sched-").count() == len(ids)
    assert Customer.history.filter(external_id__startswith="sched-").count() == len(ids)


def test_worker_and_beat__change_due_in_2_s__applied_and_visible_in_the_check_api(workers, client):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    author = User.objects.get(username="catalog")
    due = timezone.now() + timedelta(seconds=2)
    change = schedule_change(
        method="PUT",
        path="/api/v1/items/streaming-standard/entitlements/max-simultaneous-streams",
        body={"value": 2},
        effective_at=due,
        actor=author,
        reason="Two streams from now on",
        source="shell",
    )
    workers(beat=True)
    wait_for(lambda: ScheduledChange.objects.get(pk=change.pk).status == "applied", timeout=30)
    change.refresh_from_db()
    assert change.applied_at >= due

    from io import StringIO

    out = StringIO()
    call_command("create_api_key", "checker", "--user", "catalog", "--scope", "read", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    answer = client.get(
        "/api/v1/customers/streamfan/entitlements/max-simultaneous-streams",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert answer.status_code == 200
    assert (answer.json()["value"], answer.json()["source"]) == (2, "plan:streaming-standard")


def test_two_workers__four_batches_of_due_changes__each_applied_exactly_once(workers):
    changes = _customer_changes(_author(), 4 * BATCH)
    workers()
    workers()
    for _ in range(4):  # several sweeps at once, as beat ticks would queue them on a busy system
        sweep_scheduled_changes.delay()
    wait_for(lambda: not ScheduledChange.objects.filter(status="pending").exists(), timeout=240, every=1)
    _assert_each_applied_once(changes)


def test_worker_killed_mid_batch__after_restart__every_change_applied_once_none_lost(workers):
    changes = _customer_changes(_author(), 8 * BATCH)  # batches take ~0.3 s: room to land mid-way
    first = workers()
    sweep_scheduled_changes.delay()
    wait_for(lambda: ScheduledChange.objects.filter(status="applied").count() >= 30, timeout=120, every=0.1)
    kill(first)  # SIGKILL: no cleanup, an open transaction is rolled back by PostgreSQL
    pending = ScheduledChange.objects.filter(status="pending").count()
    assert pending > 0, "the worker finished before it could be killed: the test proves nothing"
    workers()
    sweep_scheduled_changes.delay()
    wait_for(lambda: not ScheduledChange.objects.filter(status="pending").exists(), timeout=240, every=1)
    _assert_each_applied_once(changes)
