"""Run the whole demo from one command: migrate, seed, then the web server, a Celery worker
and beat together, with no services (SQLite and a filesystem broker) unless DATABASE_URL and
REDIS_URL say otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from subscriptions.management.commands.seed_demo import DEMO_PASSWORD, USERS


class Command(BaseCommand):
    help = "Migrate, seed the demo catalogue, and run web + Celery worker + beat."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr: str, **options):
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        for folder in ("out", "processed"):
            (settings.VAR_DIR / "broker" / folder).mkdir(parents=True, exist_ok=True)
        call_command("migrate", verbosity=0)
        call_command("seed_demo")
        call_command("refresh_feature_usage")  # the dashboard's figures, before beat's first run
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--pool=solo",
                "--loglevel=INFO",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
            env=env,
        )
        self.stdout.write(self.style.SUCCESS(f"\nEntitle demo: http://{addr}/admin/"))
        self.stdout.write(f"API docs:     http://{addr}/api/docs/")
        self.stdout.write(f"Logins (password {DEMO_PASSWORD!r}): " + ", ".join(u for u, _ in USERS))
        self.stdout.write(f"Celery worker and beat are running (pid {worker.pid}). Ctrl-C stops everything.")
        try:
            subprocess.run(
                [sys.executable, "manage.py", "runserver", addr, "--noreload"], env=env, check=False
            )
        except KeyboardInterrupt:
            pass
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
