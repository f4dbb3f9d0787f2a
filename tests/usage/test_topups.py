"""Support's top-up (subscriptions.services.topup_grant): who may grant it, what it refuses,
and that it raises the current period's limit at once, for that period only, on the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEntry
from catalog.models import Feature
from subscriptions import services
from subscriptions.models import Customer, TopUp
from subscriptions.selectors import resolve_customer

pytestmark = pytest.mark.django_db

REASON = "Goodwill after the outage, ticket SUP-311"


def top_up(username: str | None, customer: str, feature: str, amount: int, **kwargs) -> TopUp:
    return services.topup_grant(
        customer=Customer.objects.get(external_id=customer),
        feature=Feature.objects.get(key=feature),
        amount=amount,
        actor=User.objects.get(username=username) if username else None,
        reason=REASON,
        source="admin",
        **kwargs,
    )


def test_support_tops_up_and_the_check_answers_the_raised_limit_at_once(
    demo, reader, django_capture_on_commit_callbacks
):
    before = reader.get("customers/northwind/entitlements/api-calls").json()

    with django_capture_on_commit_callbacks(execute=True):  # the customer's revision moves on commit
        topup = top_up("support", "northwind", "api-calls", 500)

    after = reader.get("customers/northwind/entitlements/api-calls").json()
    assert (before["limit"], after["limit"], after["remaining"]) == (1000, 1500, 1500)
    assert topup.period_start.isoformat() != after["resets_at"]
    entry = AuditEntry.objects.get(object_id=str(topup.pk), content_type__model="topup")
    assert (entry.reason, entry.user.username, entry.source) == (REASON, "support", "admin")


def test_a_top_up_holds_for_its_period_only(demo):
    customer = Customer.objects.get(external_id="acme")
    top_up("support", "acme", "ai-tokens", 1_000)
    now = datetime.now(UTC)
    next_month = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(
        day=1
    )

    assert resolve_customer(customer, now=now).answers["ai-tokens"].value == 2_001_000
    assert resolve_customer(customer, now=next_month).answers["ai-tokens"].value == 2_000_000


@pytest.mark.parametrize("username", ["sales", "product", "catalog"])
def test_only_a_role_that_may_grant_the_feature_tops_it_up(demo, username):
    with pytest.raises(PermissionDenied):
        top_up(username, "northwind", "api-calls", 500)
    assert not TopUp.objects.exists()


@pytest.mark.parametrize(
    ("customer", "feature", "message"),
    [
        ("acme", "api-calls", "acme does not have api-calls: there is no limit to top up."),
        ("globex", "ai-tokens", "globex has ai-tokens without limit already."),
        ("northwind", "max-members", "max-members is not metered: only a usage limit can be topped up."),
    ],
)
def test_refused_where_there_is_no_limit_to_raise(demo, customer, feature, message):
    with pytest.raises(ValidationError) as refused:
        top_up(None, customer, feature, 500)

    assert refused.value.message_dict == {"feature": [message]}
    assert not TopUp.objects.exists()


@pytest.mark.parametrize("amount", [0, -1, 2**31])
def test_an_amount_outside_1_to_the_largest_whole_number_is_refused(demo, amount):
    with pytest.raises(ValidationError) as refused:
        top_up(None, "northwind", "api-calls", amount)

    assert "amount" in refused.value.message_dict
    assert not TopUp.objects.exists()
