"""A write through the API is recorded as its key's owner, from "api", with the header's
reason and the request's id — and a scheduled change replays through the same
views as its author."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEntry
from subscriptions.models import Customer, Subscription
from tests.api.conftest import REASON

pytestmark = pytest.mark.django_db


def test_write__history_rows_name_owner_source_reason_and_request_id(demo, api_for):
    sales = User.objects.get(username="sales")
    client = api_for(sales, "write")

    response = client.put(
        "subscriptions/sub-acme",
        {"customer": "acme", "plan": "enterprise", "addons": [{"addon": "extra-seats", "quantity": 4}]},
    )

    assert response.status_code == 200
    request_id = uuid.UUID(response["X-Request-ID"])
    entries = list(AuditEntry.objects.filter(request_id=request_id))
    assert len(entries) == 2  # the subscription's plan, the add-on's quantity
    assert {(e.user_id, e.source, e.reason) for e in entries} == {(sales.pk, "api", REASON)}
    history = Subscription.history.filter(external_id="sub-acme").latest("history_date")
    assert (history.history_user_id, history.source, history.history_change_reason, history.request_id) == (
        sales.pk,
        "api",
        REASON,
        request_id,
    )


def test_write__request_id_sent_by_the_caller_is_kept(demo, api):
    request_id = uuid.uuid4()

    response = api.patch(
        "customers/acme", {"name": "Acme Inc"}, headers={"HTTP_X_REQUEST_ID": str(request_id)}
    )

    assert response["X-Request-ID"] == str(request_id)
    assert Customer.history.filter(external_id="acme").latest("history_date").request_id == request_id


def test_scheduled_change__replayed_through_the_api_view_as_its_author(
    demo, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from audit.scheduling import schedule_change, sweep_due_changes

    sales = User.objects.get(username="sales")
    with django_capture_on_commit_callbacks(execute=True):
        change = schedule_change(
            method="PUT",
            path="/api/v1/items/starter/entitlements/max-members",
            body={"value": 10},
            effective_at=timezone.now(),
            actor=User.objects.get(username="catalog"),
            reason="Price change of 1 March",
            source="api",
        )
        refused = schedule_change(
            method="PATCH",
            path="/api/v1/features/max-members",
            body={"name": "Seats"},
            effective_at=timezone.now(),
            actor=sales,  # may not edit the catalog
            reason="Rename",
            source="api",
        )
        sweep_due_changes()

    change.refresh_from_db()
    refused.refresh_from_db()
    assert (change.status, change.error) == ("applied", "")
    assert refused.status == "failed"
    assert refused.error.startswith("403")
    entry = AuditEntry.objects.filter(
        reason="Price change of 1 March", object_repr="starter → max-members"
    ).get()
    assert (entry.user.username, entry.source) == ("catalog", "task")
