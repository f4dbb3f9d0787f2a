"""Run the whole demo from one command: migrate, seed, then the web server, a Celery worker
and beat together, with no services (SQLite and a filesystem broker) unless DATABASE_URL and
REDIS_URL say otherwise.

`--addr 0.0.0.0:8000` (`make demo ADDR=0.0.0.0:8000`) serves other machines too: the demo then
accepts any host name (ALLOWED_HOSTS=*) unless ALLOWED_HOSTS is set in the environment."""

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
        parser.add_argument(
            "--addr",
            default="127.0.0.1:8000",
            help="host:port to serve on, e.g. 0.0.0.0:8000 for other machines",
        )

    def handle(self, *args, addr: str, **options):
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)  # the broker's folders come with the settings
        host = addr.rpartition(":")[0] or "127.0.0.1"
        call_command("migrate", verbosity=0)
        call_command("seed_demo")
        call_command("record_demo_usage")  # through the API's consume and usage endpoints
        call_command("refresh_feature_usage")  # the dashboard's figures, before beat's first run
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
        }
        if host not in {"127.0.0.1", "localhost", "[::1]"} and "ALLOWED_HOSTS" not in os.environ:
            env["ALLOWED_HOSTS"] = "*"  # reached by another machine's name or address
        shown = "127.0.0.1" if host in {"0.0.0.0", "[::]"} else host
        port = addr.rpartition(":")[2]
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
        self.stdout.write(self.style.SUCCESS(f"\nEntitle demo: http://{shown}:{port}/admin/"))
        if shown != host:
            self.stdout.write(
                f"(listening on every interface: other machines use this one's address, port {port})"
            )
        self.stdout.write(f"API docs:     http://{shown}:{port}/api/docs/")
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
