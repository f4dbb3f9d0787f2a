"""The demo's usage, recorded through the API's consume and usage endpoints: real figures on
the pages of a fresh demo, with no services (SQLite, no Redis) as `make demo` runs it, and on
PostgreSQL and Redis as the tests run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Sum

from usage.models import Consumption

pytestmark = pytest.mark.django_db


def totals() -> dict[tuple[str, str], int]:
    rows = Consumption.objects.values_list("customer__external_id", "feature__key").annotate(
        total=Sum("quantity")
    )
    return {(customer, feature): total for customer, feature, total in rows}


def test_demo_usage__recorded_once_through_the_api(demo, reader):
    call_command("record_demo_usage", stdout=StringIO())
    recorded = totals()
    call_command("record_demo_usage", stdout=StringIO())

    assert totals() == recorded
    assert set(recorded) == {
        ("northwind", "api-calls"),
        ("contoso", "api-calls"),
        ("acme", "ai-tokens"),
        ("umbrella", "ai-tokens"),
        ("globex", "ai-tokens"),
    }
    northwind = reader.get("customers/northwind/entitlements/api-calls").json()
    acme = reader.get("customers/acme/entitlements/ai-tokens").json()
    assert 800 <= northwind["used"] < 900 and northwind["enabled"]
    assert acme["used"] > acme["limit"] and acme["remaining"] == 0
    assert {kind for kind in Consumption.objects.values_list("kind", flat=True)} == {"consume", "report"}
    # Reported on several days of the period, for the daily chart.
    assert Consumption.objects.filter(customer__external_id="acme").dates("happened_at", "day").count() > 1


def test_demo_usage__without_any_service(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        ENTITLE_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    )

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    manage("migrate", "--verbosity", "0")
    manage("seed_demo")
    assert "Demo usage recorded" in manage("record_demo_usage")
    # What the API answers is what the rows hold; and the hard limit holds without Redis too.
    script = tmp_path / "consume.py"
    script.write_text(CONSUME_TO_THE_LIMIT)
    used, over, rest, rest_used, total = json.loads(
        manage("shell", "-c", script.read_text()).splitlines()[-1]
    )

    assert 800 <= used < 900
    assert (over, rest, rest_used, total) == (False, True, 1000, 1000)


# Run by `manage.py shell` in the demo's settings: northwind's api-calls, read, then consumed
# past the limit (refused) and up to it (allowed), through the API.
CONSUME_TO_THE_LIMIT = """
import json
from django.contrib.auth.models import User
from django.db.models import Sum
from django.test import Client
from api import services
from usage.models import Consumption

_, key = services.api_key_create(
    name="t", owner=User.objects.get(username="admin"), scope="read", actor=None,
    reason="A test of the demo", source="shell",
)
client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION="Api-Key " + key)
path = "/api/v1/customers/northwind/entitlements/api-calls"
before = client.get(path).json()
over = client.post(path + "/consume", {"quantity": 1000}, content_type="application/json").json()
left = 1000 - before["used"]
rest = client.post(path + "/consume", {"quantity": left}, content_type="application/json").json()
total = Consumption.objects.filter(customer__external_id="northwind").aggregate(t=Sum("quantity"))["t"]
print(json.dumps([before["used"], over["allowed"], rest["allowed"], rest["used"], total]))
"""
