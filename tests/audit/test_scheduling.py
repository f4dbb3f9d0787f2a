"""Scheduled changes applied in process: the sweep's rules, without a worker (the worker
tests are in test_scheduling_celery.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEntry, ScheduledChange
from audit.scheduling import cancel_change, schedule_change, sweep_due_changes
from catalog import services as catalog_services
from catalog.models import Entitlement, Item
from subscriptions.models import Customer, Subscription


def _schedule(author, method, path, body, *, at=None, reason="Planned change"):
    return schedule_change(
        method=method,
        path=path,
        body=body,
        effective_at=at or timezone.now(),
        actor=author,
        reason=reason,
        source="shell",
    )


@pytest.mark.django_db
def test_sweep__due_change__applied_as_its_author_with_its_reason_source_task(catalog_user):
    change = _schedule(
        catalog_user,
        "PUT",
        "/api/v1/items/streaming-standard/entitlements/4k-streaming",
        {"value": True},
        reason="4K for everyone from Q1, see https://docs.example/q1",
    )
    assert sweep_due_changes() == 1
    change.refresh_from_db()
    assert (change.status, change.error) == ("applied", "")
    entitlement = Entitlement.objects.get(item__key="streaming-standard", feature__key="4k-streaming")
    row = entitlement.history.get()
    assert (row.history_user, row.source) == (catalog_user, "task")
    assert row.history_change_reason == "4K for everyone from Q1, see https://docs.example/q1"


@pytest.mark.django_db
def test_sweep__not_yet_due__left_pending(catalog_user):
    change = _schedule(
        catalog_user,
        "PUT",
        "/api/v1/items/basic/entitlements/4k-streaming",
        {"value": True},
        at=timezone.now() + timedelta(hours=1),
    )
    assert sweep_due_changes() == 0
    change.refresh_from_db()
    assert change.status == "pending"


@pytest.mark.django_db
def test_sweep__plan_archived_meanwhile__failed_with_a_message_and_the_rest_applied(demo):
    sales = User.objects.get(username="sales")
    upgrade = _schedule(sales, "PATCH", "/api/v1/subscriptions/sub-acme", {"plan": "enterprise"})
    rename = _schedule(sales, "PATCH", "/api/v1/customers/globex", {"name": "Globex Corporation"})
    enterprise = Item.objects.get(key="enterprise")
    enterprise.status = Item.Status.ARCHIVED
    catalog_services.item_save(item=enterprise, actor=None, reason="Enterprise withdrawn", source="shell")

    assert sweep_due_changes() == 2
    upgrade.refresh_from_db()
    rename.refresh_from_db()
    assert upgrade.status == "failed"
    assert "enterprise" in upgrade.error and "archived" in upgrade.error
    assert Subscription.objects.get(external_id="sub-acme").plan.key == "business"
    assert rename.status == "applied"
    assert Customer.objects.get(external_id="globex").name == "Globex Corporation"


@pytest.mark.django_db
def test_sweep__author_no_longer_allowed__failed_with_403_and_nothing_changed(demo):
    support = User.objects.get(username="support")
    change = _schedule(support, "PUT", "/api/v1/items/basic/entitlements/4k-streaming", {"value": True})
    assert sweep_due_changes() == 1
    change.refresh_from_db()
    assert change.status == "failed" and change.error.startswith("403")
    assert not Entitlement.objects.filter(item__key="basic", feature__key="4k-streaming").exists()


@pytest.mark.django_db
def test_schedule__not_an_api_write__refused(catalog_user):
    for method, path in [
        ("GET", "/api/v1/features"),
        ("PUT", "/admin/"),
        ("POST", "/api/v1/scheduled-changes"),
        ("PUT", "/api/v1/nowhere/at-all"),
    ]:
        with pytest.raises(ValidationError):
            _schedule(catalog_user, method, path, {})
    assert not ScheduledChange.objects.exists()


@pytest.mark.django_db
def test_schedule__a_body_the_api_would_refuse__refused_when_scheduled(catalog_user):
    with pytest.raises(ValidationError) as refused:
        _schedule(catalog_user, "PATCH", "/api/v1/customers/acme", {"traits": {"seats": 2**64}})

    assert refused.value.message_dict["body"][0].startswith("Numbers must lie within")
    assert "traits.seats" in refused.value.message_dict["body"][0]
    assert not ScheduledChange.objects.exists()


@pytest.mark.django_db
def test_schedule__a_write_the_endpoint_does_not_take__refused_saying_so(catalog_user):
    with pytest.raises(ValidationError) as refused:
        _schedule(catalog_user, "POST", "/api/v1/items/basic", {"name": "Basic"})

    assert refused.value.message_dict == {"method": ["/api/v1/items/basic takes no POST."]}
    assert not ScheduledChange.objects.exists()


@pytest.mark.django_db
def test_cancel__pending_change__canceled_with_reason_and_never_applied(catalog_user):
    change = _schedule(catalog_user, "PUT", "/api/v1/items/basic/entitlements/4k-streaming", {"value": True})
    cancel_change(change=change, actor=catalog_user, reason="Launch postponed", source="shell")
    assert sweep_due_changes() == 0
    change.refresh_from_db()
    assert change.status == "canceled"
    assert AuditEntry.objects.filter(reason="Launch postponed", object_id=str(change.pk)).exists()
    with pytest.raises(ValidationError):
        cancel_change(change=change, actor=catalog_user, reason="Again", source="shell")


@pytest.mark.django_db
def test_expire_trials__past_trial_end__expired_with_a_system_reason(demo):
    from subscriptions.services import expire_ended_trials

    assert expire_ended_trials() == 1  # tryhard's trial ended two days ago; initech's has not
    tryhard = Subscription.objects.get(external_id="sub-tryhard")
    assert tryhard.status == "expired"
    row = tryhard.history.first()
    assert (row.source, row.history_user) == ("task", None)
    assert row.history_change_reason.startswith("Trial ended")
    assert Subscription.objects.get(external_id="sub-initech").status == "trialing"


@pytest.mark.django_db
def test_admin_change_form__scheduled__stored_not_saved__then_applied_as_its_author(catalog_user, client):
    from django.urls import reverse

    from catalog.models import Feature
    from tests.formdata import form_data

    client.force_login(catalog_user)
    feature = Feature.objects.get(key="4k-streaming")
    url = reverse("admin:catalog_feature_change", args=[feature.pk])
    data = form_data(client.get(url).content.decode(), "feature_form")
    when = timezone.now() + timedelta(days=30)
    data.update(
        {
            "name": "4K Ultra HD",
            "change_reason": "Rename for the spring campaign",
            "schedule_for_0": when.strftime("%Y-%m-%d"),
            "schedule_for_1": when.strftime("%H:%M:%S"),
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302
    feature.refresh_from_db()
    assert feature.name == "4K streaming"  # nothing changes until then
    change = ScheduledChange.objects.get()
    assert (change.method, change.path, change.body) == (
        "PATCH",
        "/api/v1/features/4k-streaming",
        {"name": "4K Ultra HD"},
    )
    assert (change.created_by, change.reason) == (catalog_user, "Rename for the spring campaign")

    assert sweep_due_changes(now=when + timedelta(seconds=1)) == 1
    feature.refresh_from_db()
    assert feature.name == "4K Ultra HD"
    row = feature.history.first()
    assert (row.history_user, row.source) == (catalog_user, "task")


@pytest.mark.django_db
def test_admin_change_form__scheduled_in_the_past__refused_with_a_message(demo, client):
    from django.urls import reverse

    from catalog.models import Feature
    from tests.formdata import form_data

    client.force_login(User.objects.get(username="catalog"))
    feature = Feature.objects.get(key="4k-streaming")
    url = reverse("admin:catalog_feature_change", args=[feature.pk])
    data = form_data(client.get(url).content.decode(), "feature_form")
    data.update(
        {"name": "Too late", "change_reason": "x", "schedule_for_0": "2020-01-01", "schedule_for_1": "10:00"}
    )
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Pick a time in the future" in response.content.decode()
    assert not ScheduledChange.objects.exists()
