"""The demo over HTTP: every answer of every demo customer is the resolver's
(tests/subscriptions/test_demo_scenarios.py checks the resolver), and the scenarios read as they should."""

from __future__ import annotations

import pytest
from django.utils import timezone

from checks.snapshots import answer_entry
from subscriptions.models import Customer, Override
from subscriptions.selectors import resolve_customer

pytestmark = pytest.mark.django_db

DEMO_CUSTOMERS = [
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "streamfan", "cinephile",
    "sportsbar", "northwind", "contoso", "fabrikam", "oldco", "tryhard", "prospect",
]  # fmt: skip


@pytest.mark.parametrize("external_id", DEMO_CUSTOMERS)
def test_every_answer_over_http__is_the_resolvers(demo, reader, external_id):
    body = reader.get(f"customers/{external_id}/entitlements").json()
    resolution = resolve_customer(Customer.objects.get(external_id=external_id), now=timezone.now())

    assert body["entitlements"] == {key: answer_entry(answer) for key, answer in resolution.answers.items()}
    expected_until = resolution.valid_until
    assert body["valid_until"] == (
        expected_until.isoformat().replace("+00:00", "Z") if expected_until else None
    )
    for key, answer in resolution.answers.items():
        one = reader.get(f"customers/{external_id}/entitlements/{key}").json()
        assert one == {"feature": key, "customer": external_id, **answer_entry(answer)}


def answer(reader, external_id: str, feature: str) -> tuple:
    a = reader.get(f"customers/{external_id}/entitlements/{feature}").json()
    return a["enabled"], a["value"], a["source"]


def test_scenarios__team_size(demo, reader):
    assert answer(reader, "acme", "max-members") == (True, 35, "plan:business")  # 25 + 2 × 5 seats
    assert answer(reader, "globex", "max-members") == (True, None, "plan:enterprise")  # unlimited
    assert answer(reader, "vandelay", "max-members") == (True, 50, "plan:business-2024")  # grandfathered


def test_scenarios__streaming(demo, reader):
    override = Override.objects.get(subscription__customer__external_id="streamfan")
    assert answer(reader, "streamfan", "4k-streaming") == (True, True, f"override:{override.pk}")
    assert answer(reader, "cinephile", "live-sports") == (False, False, "market")  # US
    assert answer(reader, "sportsbar", "live-sports") == (True, True, "plan:streaming-premium")  # IE


def test_scenarios__lifecycle(demo, reader):
    assert answer(reader, "initech", "max-members") == (True, 5, "plan:starter")  # in trial
    assert answer(reader, "umbrella", "max-members") == (True, 25, "plan:business")  # within grace
    assert answer(reader, "hooli", "max-members") == (False, 0, "default")  # past grace
    assert answer(reader, "hooli", "data-export") == (True, True, "plan:business")  # kept when delinquent
    for dead in ("fabrikam", "oldco", "tryhard", "prospect"):
        entitlements = reader.get(f"customers/{dead}/entitlements").json()["entitlements"]
        assert [k for k, a in entitlements.items() if a["enabled"]] == [], dead


def test_scenarios__segments(demo, reader):
    assert answer(reader, "northwind", "change-request") == (True, True, "segment:basic-or-higher")
    assert answer(reader, "northwind", "change-request-version") == (True, "v1", "plan:basic")
    assert answer(reader, "contoso", "change-request-version") == (True, "v2", "segment:beta")
    assert answer(reader, "contoso", "support-level") == (True, "email+chat+sla", "plan:advanced")
    assert answer(reader, "northwind", "api-calls-per-day") == (True, 100, "plan:basic")


def test_scenarios__fallback_is_published(demo, reader):
    entitlements = reader.get("customers/hooli/entitlements").json()["entitlements"]

    assert entitlements["data-export"]["fallback"] == "allow"
    assert entitlements["max-members"]["fallback"] == "deny"
