"""Record the demo's usage through the API's own endpoints (docs/usage.md), so the customer
pages and the dashboard show real counts: consumption reported for each day of the current
period so far, and today's consumed. Runs once: a database that already has usage is left as
it is."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.test import Client
from django.utils import timezone

from api import services as api_services
from subscriptions.models import Customer
from subscriptions.selectors import resolve_customer
from usage.models import Consumption

REASON = "Demo usage recorded by record_demo_usage."

# customer, feature, share of the limit used so far (or units, for an unlimited feature)
USAGE = [
    ("northwind", "api-calls", 0.86),  # past 80% of a hard limit
    ("contoso", "api-calls", 0.42),
    ("acme", "ai-tokens", 1.07),  # past a soft limit
    ("umbrella", "ai-tokens", 0.31),
    ("globex", "ai-tokens", 5_400_000),  # unlimited
]


class Command(BaseCommand):
    help = "Record demo usage of the metered features through the consume and usage endpoints (once)."

    def handle(self, *args, **options):
        if Consumption.objects.exists():
            self.stdout.write("Demo usage already recorded.")
            return
        _, key = api_services.api_key_create(
            name="demo-usage",
            owner=User.objects.get(username="admin"),
            scope="read",
            actor=None,
            reason=REASON,
            source="shell",
        )
        client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Api-Key {key}")
        now = timezone.now()
        recorded = 0
        for customer, feature, share in USAGE:
            answer = self._get(client, f"/api/v1/customers/{customer}/entitlements/{feature}")
            total = int(share * answer["limit"]) if answer["limit"] else int(share)
            today = total // 10
            # The rest was reported on each day of the period so far, a little more each day.
            period_start = (
                resolve_customer(Customer.objects.get(external_id=customer), now=now)
                .answers[feature]
                .period_start
            )
            days = range(max((now - period_start).days, 1))
            weights = sum(day + 1 for day in days)
            for day in days:
                quantity = (total - today) * (day + 1) // weights
                at = max(period_start + timedelta(days=day, hours=12), period_start)
                if quantity and at < now:
                    body = {
                        "feature": feature,
                        "quantity": quantity,
                        "timestamp": at.isoformat(),
                        "idempotency_key": f"demo-{customer}-{feature}-{day}",
                    }
                    self._post(client, f"/api/v1/customers/{customer}/usage", body)
                    recorded += 1
            for _ in range(10):
                path = f"/api/v1/customers/{customer}/entitlements/{feature}/consume"
                self._post(client, path, {"quantity": max(today // 10, 1)})
                recorded += 1
        self.stdout.write(self.style.SUCCESS(f"Demo usage recorded ({recorded} requests)."))

    def _get(self, client: Client, path: str) -> dict:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")
        return response.json()

    def _post(self, client: Client, path: str, body: dict) -> dict:
        response = client.post(path, json.dumps(body), content_type="application/json")
        if response.status_code not in (200, 202):
            raise RuntimeError(f"POST {path} answered {response.status_code}: {response.content[:300]!r}")
        return response.json()
