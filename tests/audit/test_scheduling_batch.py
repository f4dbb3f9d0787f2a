"""The sweep in bulk (audit.bulk.BulkRun) against making each change on its own: the same
changes, swept both ways, must leave the same rows, the same statuses and errors, the same
history and audit entries (who, why, from where, what changed, one request id per change) and
move the same cache revisions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import resolve
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from audit import scheduling
from audit.bulk import AuditedWrites, bulk_create_audited
from audit.models import AuditEntry, ScheduledChange
from audit.writes import delete_audited
from catalog.models import Entitlement, Feature, Item
from catalog.roles import ROLE_SALES
from subscriptions import services
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from toolkit import revisions
from toolkit.change_context import change_context

MODELS = [Customer, Subscription, SubscriptionAddon, Override, Entitlement, Item, Feature, ScheduledChange]
VOLATILE = {"id", "created_at", "history_id", "history_date", "request_id", "history_user_id"}
WINDOW = "2031-06-0{}T00:00:00Z"
ACME_OVERRIDES = "/api/v1/subscriptions/sub-acme/overrides"
CINEPHILE_OVERRIDES = "/api/v1/subscriptions/sub-cinephile/overrides"
STREAMFAN_OVERRIDES = "/api/v1/subscriptions/sub-streamfan/overrides"
BASIC_API_CALLS = "/api/v1/items/basic/entitlements/api-calls-per-day"
NOW = timezone.now() + timedelta(hours=1)  # both sweeps apply as of the same moment


def _scenario() -> list[tuple[str, str, str, dict]]:
    """(author, method, path, body): every batch kind, each way it can fail, two changes to one
    object, a change to an object created earlier in the batch, and another kind in between."""
    grant = {
        "feature": "max-members",
        "value": 50,
        "valid_from": WINDOW.format(1),
        "valid_until": WINDOW.format(3),
    }
    grant_4k, revoke = (
        {"feature": "4k-streaming", "value": True},
        {"feature": "max-members", "effect": "revoke"},
    )
    return [
        ("sales", "PATCH", "/api/v1/customers/acme", {"traits": {"industry": "media", "seats": [1, 2]}}),
        ("sales", "PATCH", "/api/v1/customers/acme", {"name": "Acme Corporation", "country": "de"}),
        ("sales", "PATCH", "/api/v1/customers/acme", {"name": "Acme Corporation"}),  # no change left
        ("sales", "PATCH", "/api/v1/customers/globex", {"country": "ZZ"}),  # no such country
        ("sales", "PATCH", "/api/v1/customers/globex", {"nickname": "G"}),  # unknown field
        ("sales", "PATCH", "/api/v1/customers/gone", {"name": "Gone"}),  # deleted meanwhile
        ("support", "PATCH", "/api/v1/customers/hooli", {"name": "Hooli XYZ"}),  # not allowed
        ("leaver", "PATCH", "/api/v1/customers/hooli", {"name": "Hooli XYZ"}),  # deactivated author
        ("sales", "PUT", "/api/v1/customers/newco", {"name": "NewCo", "country": "NL"}),  # created...
        ("sales", "PATCH", "/api/v1/customers/newco", {"traits": {"beta": True}}),  # ...then changed
        ("sales", "PUT", "/api/v1/customers/initech", {"name": "Initech"}),  # replaced
        ("sales", "PATCH", "/api/v1/subscriptions/sub-acme", {"plan": "enterprise"}),
        ("sales", "PATCH", "/api/v1/subscriptions/sub-acme", {"plan": "starter"}),
        ("sales", "PATCH", "/api/v1/subscriptions/sub-globex", {"plan": "business-2024"}),  # legacy
        ("sales", "PATCH", "/api/v1/subscriptions/sub-globex", {"plan": "extra-seats"}),  # an add-on
        ("sales", "PATCH", "/api/v1/subscriptions/sub-globex", {"plan": "no-such-plan"}),
        ("support", "PATCH", "/api/v1/subscriptions/sub-hooli", {"plan": "starter"}),
        ("sales", "PATCH", "/api/v1/subscriptions/sub-umbrella", {"status": "active"}),
        ("sales", "PATCH", "/api/v1/subscriptions/sub-fabrikam", {"status": "trialing"}),  # no trial end
        ("sales", "PATCH", "/api/v1/subscriptions/sub-contoso", {"plan": "advanced"}),  # unchanged
        ("sales", "PATCH", "/api/v1/subscriptions/sub-acme", {"addons": []}),  # another shape: on its own
        ("catalog", "PATCH", "/api/v1/items/advanced", {"status": "archived"}),  # another kind, meanwhile
        ("sales", "PATCH", "/api/v1/subscriptions/sub-northwind", {"plan": "advanced"}),  # archived now
        ("sales", "PATCH", "/api/v1/subscriptions/sub-northwind", {"plan": "standard"}),
        ("sales", "POST", ACME_OVERRIDES, grant),
        ("sales", "POST", ACME_OVERRIDES, grant),  # overlaps the one before
        ("sales", "POST", ACME_OVERRIDES, {**grant, "valid_from": WINDOW.format(3)}),
        ("sales", "POST", ACME_OVERRIDES, grant_4k),
        ("support", "POST", STREAMFAN_OVERRIDES, {**grant_4k, "valid_from": WINDOW.format(5)}),
        ("support", "POST", CINEPHILE_OVERRIDES, {"feature": "4k-streaming", "effect": "revoke"}),
        ("support", "POST", CINEPHILE_OVERRIDES, {"feature": "support-level", "value": "gold"}),
        ("support", "POST", CINEPHILE_OVERRIDES, {"feature": "support-level", "value": " email "}),
        ("sales", "POST", "/api/v1/subscriptions/sub-nobody/overrides", {**grant, "valid_from": None}),
        ("sales", "POST", ACME_OVERRIDES, {"feature": "no-such-feature"}),
        ("sales", "POST", ACME_OVERRIDES, {**revoke, "value": 5}),
        ("catalog", "PUT", "/api/v1/items/basic/entitlements/4k-streaming", {"value": True}),  # new
        ("catalog", "PUT", "/api/v1/items/basic/entitlements/4k-streaming", {"value": "on"}),  # same, as text
        ("catalog", "PUT", BASIC_API_CALLS, {"value": 200}),
        ("catalog", "PUT", BASIC_API_CALLS, {"value": 5000}),  # out of range
        ("catalog", "PUT", "/api/v1/items/starter/entitlements/max-members", {"value": "10"}),
        ("support", "PUT", "/api/v1/items/starter/entitlements/max-members", {"value": 25}),
        ("catalog", "PUT", "/api/v1/items/no-such-item/entitlements/max-members", {"value": 10}),
        ("catalog", "PUT", "/api/v1/items/basic/entitlements/max-members", {"value": 10, "extra": 1}),
    ]  # fmt: skip


@pytest.fixture
def scheduled(demo):
    """The scenario's changes, due now, after a customer was deleted and a salesman left."""
    leaver = User.objects.create_user("leaver", is_active=False)
    reason = "Test setup"
    with change_context(actor=None, reason=reason, source="shell"):
        leaver.groups.add(Group.objects.get(name=ROLE_SALES))
        gone = Customer(external_id="gone", name="Gone")
        gone.save()
    delete_audited(gone, actor=None, reason=reason, source="shell")
    users = {u.username: u for u in User.objects.all()}
    start = timezone.now() - timedelta(minutes=10)
    changes = [
        ScheduledChange(
            method=method,
            path=path,
            body=body,
            effective_at=start + timedelta(seconds=n),
            reason=f"Scheduled step {n}, see https://tickets.example/{n}",
            created_by=users[author],
        )
        for n, (author, method, path, body) in enumerate(_scenario())
    ]
    with change_context(actor=None, reason=reason, source="shell"):
        return bulk_create_audited(ScheduledChange, changes)


def _revision_keys() -> list[str]:
    ids = [*Customer.objects.values_list("external_id", flat=True), "newco"]
    return [revisions.CATALOG_KEY, *(revisions.customer_key(i) for i in ids)]


def _sweep(monkeypatch, *, in_bulk: bool) -> tuple[dict, int]:
    """Sweep everything due in a transaction rolled back after: what it left, and how many
    changes were made on their own. Its revision bumps run after the rollback."""
    alone = []
    apply_change = scheduling.apply_change

    def on_its_own(due, *, now):
        alone.append(due.change.pk)
        return apply_change(due, now=now)

    with monkeypatch.context() as patch:
        patch.setattr(scheduling, "apply_change", on_its_own)
        marks = {model: _last_history_id(model) for model in MODELS}
        last_entry = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        with transaction.atomic():
            connection = transaction.get_connection()
            already = len(connection.run_on_commit)
            assert scheduling.sweep_due_changes(now=NOW, in_bulk=in_bulk) == len(_scenario())
            bumps = [func for _, func, _ in connection.run_on_commit[already:]]
            outcome = _outcome(marks, last_entry)
            transaction.set_rollback(True)
    keys = _revision_keys()
    before = cache.get_many(keys)
    for bump in bumps:
        bump()
    after = cache.get_many(keys)
    outcome["revisions moved"] = sorted(k for k in keys if before.get(k) != after.get(k))
    return outcome, len(alone)


def _bodies_refused(changes: list[ScheduledChange]) -> int:
    """How many of `changes` have a body their endpoint's serializer refuses."""
    refused = 0
    for change in changes:
        write = resolve(change.path).func.view_class.writes[change.method]
        try:
            write.validate(change.body)
        except ValidationError:
            refused += 1
    return refused


def _last_history_id(model) -> int:
    return model.history.order_by("-history_id").values_list("history_id", flat=True).first() or 0


def _plain(text: str) -> str:
    """Errors name overrides by id, and ids are not reused after a rollback."""
    return re.sub(r"#\d+", "#N", text)


def _stamped(changes: list[dict]) -> list[dict]:
    """A creation time says when it ran, not what it did: only whether it is there counts."""
    return [{**c, "new": bool(c["new"])} if c["field"] == "created at" else c for c in changes]


def _values(row, exclude=VOLATILE) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in row.items() if k not in exclude))


def _outcome(marks: dict, last_entry: int) -> dict:
    """Everything the sweep left, keyed by scheduled change where it belongs to one."""
    changes = {c.pk: c for c in ScheduledChange.objects.all()}
    by_request: dict = {}
    for model in MODELS:
        for row in model.history.filter(history_id__gt=marks[model]).values():
            by_request.setdefault(row["request_id"], []).append(
                (model._meta.label, row["history_type"], row["history_user_id"], row["history_change_reason"],
                 row["source"], _plain(repr(_values(row))))
            )  # fmt: skip
    status_rows = ScheduledChange.history.filter(history_id__gt=marks[ScheduledChange]).values(
        "id", "request_id"
    )
    request_of = {row["request_id"]: row["id"] for row in status_rows}
    assert len(request_of) == len(changes), "one request id per change"
    assert set(by_request) <= set(request_of), "every history row belongs to one change"
    entries: dict = {}
    for entry in AuditEntry.objects.filter(id__gt=last_entry).select_related("content_type"):
        model = entry.content_type.model_class()
        row = model.history.get(history_id=entry.history_id)
        assert (str(row.id), row.request_id, row.history_type) == (
            entry.object_id,
            entry.request_id,
            entry.action,
        )
        entries.setdefault(request_of[entry.request_id], []).append(
            (model._meta.label, entry.action, entry.user_id, entry.source, entry.reason, entry.object_repr,
             _plain(repr(_stamped(entry.changes))))
        )  # fmt: skip
    return {
        "statuses": {pk: (c.status, _plain(c.error), c.applied_at is not None) for pk, c in changes.items()},
        "rows": {
            model._meta.label: sorted(_values(row) for row in model.objects.values())
            for model in MODELS
            if model is not ScheduledChange
        },
        "history": {request_of[r]: sorted(rows) for r, rows in by_request.items()},
        "audit": {pk: sorted(rows) for pk, rows in entries.items()},
    }


@pytest.mark.django_db
def test_batch__mixed_changes__same_outcome_as_making_each_on_its_own(scheduled, monkeypatch):
    one_by_one, alone = _sweep(monkeypatch, in_bulk=False)
    in_bulk, alone_in_bulk = _sweep(monkeypatch, in_bulk=True)

    # The scenario means what it says: successes and failures of every kind.
    statuses = one_by_one["statuses"]
    failed = [pk for pk, (status, _, _) in statuses.items() if status == "failed"]
    assert len(failed) == 22 and len(statuses) - len(failed) == 21
    errors = {statuses[c.pk][1].split(":")[0] for c in scheduled if c.pk in failed}
    assert errors == {"400", "403", "404"}
    assert alone == len(scheduled)
    # In bulk, only the writes that cannot be were made on their own: the add-ons PATCH and
    # the item PATCH (no bulk form), the bodies their serializer refuses, and the override
    # overlapping one made in the same batch (its error names that one by id).
    assert alone_in_bulk == 2 + _bodies_refused(scheduled) + 1

    assert in_bulk["statuses"] == one_by_one["statuses"]
    assert in_bulk["rows"] == one_by_one["rows"]
    assert in_bulk["history"] == one_by_one["history"]
    assert in_bulk["audit"] == one_by_one["audit"]
    assert in_bulk["revisions moved"] == one_by_one["revisions moved"]
    assert revisions.customer_key("acme") in in_bulk["revisions moved"]
    assert revisions.CATALOG_KEY in in_bulk["revisions moved"]


@pytest.mark.django_db
def test_batch__a_failed_change__says_why_like_the_api(scheduled):
    scheduling.sweep_due_changes()
    errors = dict(
        ScheduledChange.objects.values_list("path", "error").filter(status="failed", body__has_key="plan")
    )
    assert errors["/api/v1/subscriptions/sub-hooli"] == "403: You may not change subscriptions."
    rows = ScheduledChange.objects.filter(path="/api/v1/subscriptions/sub-northwind").order_by("effective_at")
    archived, moved = rows
    assert archived.status == "failed" and "advanced is archived" in archived.error
    assert moved.status == "applied"
    assert Subscription.objects.get(external_id="sub-northwind").plan.key == "standard"
    gone = ScheduledChange.objects.get(path="/api/v1/customers/gone")
    assert (gone.status, gone.error) == ("failed", "404: No customer gone.")


def _trait_changes(author: User, count: int, *, customers: list[Customer]) -> list[ScheduledChange]:
    changes = [
        ScheduledChange(
            method="PATCH",
            path=f"/api/v1/customers/{customers[n % len(customers)].external_id}",
            body={"traits": {"step": n}},
            effective_at=timezone.now() - timedelta(minutes=1),
            reason=f"Step {n}",
            created_by=author,
        )
        for n in range(count)
    ]
    with change_context(actor=None, reason="Test setup", source="shell"):
        return bulk_create_audited(ScheduledChange, changes)


@pytest.mark.django_db
@pytest.mark.parametrize("count", [50, 500])
def test_batch__n_changes__queries_do_not_grow_with_n(demo, count, django_assert_max_num_queries):
    sales = User.objects.get(username="sales")
    _trait_changes(sales, count, customers=list(Customer.objects.all()))
    with django_assert_max_num_queries(24):
        assert scheduling.sweep_due_changes(batch=500) == count
    assert ScheduledChange.objects.filter(status="applied").count() == count
    assert Customer.history.filter(history_change_reason__startswith="Step ").count() == count


@pytest.mark.django_db
def test_batch__bulk_write_refused__the_batch_is_made_change_by_change(demo, monkeypatch):
    sales = User.objects.get(username="sales")
    acme = Customer.objects.get(external_id="acme")
    changes = _trait_changes(sales, 3, customers=[acme])
    alone = []
    original = scheduling.apply_change

    def refuse(self, **kwargs):
        raise IntegrityError("refused, as a constraint would")

    def on_its_own(due, *, now):
        alone.append(due.change.pk)
        return original(due, now=now)

    monkeypatch.setattr(AuditedWrites, "flush", refuse)
    monkeypatch.setattr(scheduling, "apply_change", on_its_own)
    assert scheduling.sweep_due_changes() == 3
    assert alone == [c.pk for c in changes]
    acme.refresh_from_db()
    assert acme.traits == {"step": 2}
    assert [h.history_change_reason for h in acme.history.order_by("history_id")][-3:] == [
        "Step 0",
        "Step 1",
        "Step 2",
    ]
    assert ScheduledChange.history.filter(status="applied").count() == 3


@pytest.mark.django_db
def test_batch__a_write_breaks_in_bulk__made_on_its_own_and_the_rest_goes_on(demo, monkeypatch):
    sales = User.objects.get(username="sales")
    customers = list(Customer.objects.order_by("external_id")[:3])
    changes = _trait_changes(sales, 3, customers=customers)
    original = services.customer_put
    calls = []

    def breaks_second(**kwargs):
        calls.append(kwargs["external_id"])
        if len(calls) == 2:
            raise RuntimeError("a bug")
        return original(**kwargs)

    monkeypatch.setattr(services, "customer_put", breaks_second)
    assert scheduling.sweep_due_changes() == 3
    # The second broke in bulk and was made again on its own; the third went on in bulk.
    assert calls == [c.external_id for c in (customers[0], customers[1], customers[1], customers[2])]
    assert set(
        ScheduledChange.objects.filter(pk__in=[c.pk for c in changes]).values_list("status", flat=True)
    ) == {"applied"}
    for n, customer in enumerate(customers):
        customer.refresh_from_db()
        assert customer.traits == {"step": n}
        assert customer.history.filter(history_change_reason=f"Step {n}").count() == 1
