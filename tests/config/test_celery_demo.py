"""A Celery worker started by hand on a fresh checkout, with no Redis configured, runs on the
filesystem broker: the settings make the broker's folders themselves (none exist in a clone)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from django.conf import settings


def test_worker__fresh_checkout_without_redis__starts_and_makes_its_folders(tmp_path):
    var = tmp_path / "var"  # as in a new clone: nothing under var/ yet
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        ENTITLE_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'entitle.sqlite3'}",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        output = []
        while time.monotonic() < deadline:
            line = worker.stdout.readline()
            if not line and worker.poll() is not None:
                break
            output.append(line)
            if " ready." in line:
                break
        assert any(" ready." in line for line in output), "".join(output)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert {p.name for p in (var / "broker").iterdir()} >= {"out", "processed", "control"}
