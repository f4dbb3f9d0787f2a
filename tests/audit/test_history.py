"""Every change is recorded with who, when, what and why — from every path."""

from __future__ import annotations

import uuid

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.history import AuditFields
from audit.models import AuditEntry
from catalog import services as catalog_services
from catalog.models import Feature, Item
from subscriptions import services
from subscriptions.models import Customer
from tests import factories
from toolkit.change_context import SOURCES, ChangeReasonRequired, change_context

TRACKED = sorted(
    (
        m
        for m in apps.get_models()
        if hasattr(m, "_history_records") and m.__module__.split(".")[0] != "simple_history"
    ),
    key=lambda m: m._meta.label,
)
HISTORY_MODELS = [m for m in apps.get_models() if issubclass(m, AuditFields)]


def _instance(model):
    """One saved instance of every tracked model, built with the factories where they exist."""
    makers = {
        "catalog.Tag": factories.TagFactory,
        "catalog.Feature": factories.FeatureFactory,
        "catalog.Item": factories.ItemFactory,
        "catalog.Entitlement": factories.EntitlementFactory,
        "subscriptions.Customer": factories.CustomerFactory,
        "subscriptions.Subscription": factories.SubscriptionFactory,
        "subscriptions.SubscriptionAddon": factories.SubscriptionAddonFactory,
        "subscriptions.Override": factories.OverrideFactory,
        "subscriptions.TopUp": factories.TopUpFactory,
        "segments.Segment": factories.SegmentFactory,
    }
    if model._meta.label in makers:
        return makers[model._meta.label]()
    with change_context(actor=None, reason="Test data", source="shell"):
        label = model._meta.label
        if label == "segments.SegmentMember":
            return model.objects.create(
                segment=factories.SegmentFactory(), customer=factories.CustomerFactory()
            )
        if label == "segments.Condition":
            return model.objects.create(
                segment=factories.SegmentFactory(), attribute="country", op="eq", value="DE"
            )
        if label == "segments.TargetingRule":
            return model.objects.create(
                feature=factories.FeatureFactory(), segment=factories.SegmentFactory(), value=True
            )
        permission = Permission.objects.get(codename="grant_feature")
        if label in ("catalog.FeatureUserPermission", "segments.SegmentUserPermission"):
            target = factories.FeatureFactory() if label.startswith("catalog") else factories.SegmentFactory()
            if label.startswith("segments"):
                permission = Permission.objects.get(codename="change_segment")
            return model.objects.create(
                user=User.objects.create(username=uuid.uuid4().hex[:10]),
                permission=permission,
                content_object=target,
            )
        if label in ("catalog.FeatureGroupPermission", "segments.SegmentGroupPermission"):
            target = factories.FeatureFactory() if label.startswith("catalog") else factories.SegmentFactory()
            if label.startswith("segments"):
                permission = Permission.objects.get(codename="change_segment")
            return model.objects.create(
                group=Group.objects.create(name=uuid.uuid4().hex[:10]),
                permission=permission,
                content_object=target,
            )
        if label == "audit.ScheduledChange":
            from django.utils import timezone

            return model.objects.create(
                method="PUT",
                path="/api/v1/customers/x",
                body={},
                reason="Test data",
                effective_at=timezone.now(),
                created_by=User.objects.create(username="author"),
            )
    raise AssertionError(f"No way to build a {label}: add it here so it is covered.")


def test_tracked_models__cover_every_domain_model():
    labels = {m._meta.label for m in TRACKED}
    for app in ("catalog", "segments", "subscriptions"):
        for model in apps.get_app_config(app).get_models():
            if not model.__name__.startswith("Historical"):
                assert model._meta.label in labels, f"{model._meta.label} keeps no history"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model", TRACKED, ids=lambda m: m._meta.label)
def test_write__outside_a_change_context__fails_before_writing(model):
    """In autocommit, as a shell or a script would run: nothing reaches the database."""
    instance = _instance(model)
    history_before = model.history.count()
    fields = {f.attname: getattr(instance, f.attname) for f in model._meta.concrete_fields}
    with pytest.raises(ChangeReasonRequired):
        instance.save()
    with pytest.raises(ChangeReasonRequired):
        instance.delete()
    stored = model.objects.get(pk=instance.pk)
    assert {f.attname: getattr(stored, f.attname) for f in model._meta.concrete_fields} == fields
    assert model.history.count() == history_before


@pytest.mark.django_db
@pytest.mark.parametrize("model", TRACKED, ids=lambda m: m._meta.label)
def test_bulk_writes__on_a_tracked_model__are_refused(model):
    _instance(model)
    with pytest.raises(ChangeReasonRequired):
        model.objects.update(pk=1)
    with pytest.raises(ChangeReasonRequired):
        model.objects.bulk_create([])
    with pytest.raises(ChangeReasonRequired):
        model.objects.bulk_update([], ["pk"])


@pytest.mark.django_db
def test_change_context__blank_reason__refused():
    with pytest.raises(ChangeReasonRequired), change_context(actor=None, reason="   \n ", source="shell"):
        pass


@pytest.mark.django_db
def test_service_write__history_row__holds_user_reason_source_and_request_id():
    user = User.objects.create_superuser("ada", password="x")
    customer = services.customer_save(
        customer=Customer(external_id="acme", name="Acme", country="DE"),
        actor=user,
        reason="New account, ticket https://tickets.example/42",
        source="shell",
    )
    row = customer.history.get()
    assert (row.history_user, row.source) == (user, "shell")
    assert row.history_change_reason == "New account, ticket https://tickets.example/42"
    assert row.request_id is not None
    entry = AuditEntry.objects.get(object_id=str(customer.pk), content_type__model="customer")
    assert (entry.user, entry.reason, entry.request_id) == (user, row.history_change_reason, row.request_id)
    assert {"field": "name", "old": None, "new": "Acme"} in entry.changes


@pytest.mark.django_db
def test_service_write__unchanged_object__records_nothing():
    user = User.objects.create_superuser("ada", password="x")
    customer = factories.CustomerFactory(name="Acme")
    customer = Customer.objects.get(pk=customer.pk)
    services.customer_save(customer=customer, actor=user, reason="No-op", source="shell")
    assert customer.history.count() == 1
    customer.name = "Acme GmbH"
    services.customer_save(customer=customer, actor=user, reason="Renamed", source="shell")
    assert customer.history.count() == 2
    entry = AuditEntry.objects.filter(object_id=str(customer.pk), content_type__model="customer").first()
    assert entry.changes == [{"field": "name", "old": "Acme", "new": "Acme GmbH"}]


@pytest.mark.django_db
def test_service_write__history__costs_two_inserts_whatever_the_history_size():
    user = User.objects.create_superuser("ada", password="x")
    user.has_perm("subscriptions.change_customer")  # warm the permission cache
    customer = Customer.objects.get(pk=factories.CustomerFactory().pk)
    counts = []
    for index in range(3):
        customer.name = f"Renamed {index}"
        with CaptureQueriesContext(connection) as queries:
            services.customer_save(customer=customer, actor=user, reason="Rename", source="shell")
        inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
        assert [sql.split('"')[1] for sql in inserts] == [
            "subscriptions_historicalcustomer",
            "audit_auditentry",
        ]
        counts.append(len(queries.captured_queries))
    assert len(set(counts)) == 1  # no query grows with the rows already recorded


@pytest.mark.django_db
def test_admin_save__form_and_inlines__share_one_request_id(client):
    admin = User.objects.create_superuser("ada", password="x")
    client.force_login(admin)
    plan = factories.ItemFactory(key="gold")
    feature = factories.FeatureFactory(key="sso")
    url = reverse("admin:catalog_item_change", args=[plan.pk])
    response = client.post(
        url,
        {
            "key": "gold",
            "kind": "plan",
            "name": "Gold plan",
            "status": "active",
            "rank": 10,
            "grace_days": 7,
            "external_id": "",
            "entitlements-TOTAL_FORMS": 1,
            "entitlements-INITIAL_FORMS": 0,
            "entitlements-0-feature": feature.pk,
            "entitlements-0-value": "on",
            "change_reason": "Gold includes SSO, see https://docs.example/gold",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entries = AuditEntry.objects.filter(source="admin")
    assert {e.content_type.model for e in entries} == {"item", "entitlement"}
    assert len({e.request_id for e in entries}) == 1
    assert {e.user for e in entries} == {admin}
    assert {e.reason for e in entries} == {"Gold includes SSO, see https://docs.example/gold"}


@pytest.mark.django_db
def test_admin_save__without_reason__saves_nothing_and_shows_the_error(client):
    client.force_login(User.objects.create_superuser("ada", password="x"))
    response = client.post(
        reverse("admin:catalog_item_add"),
        {
            "key": "gold",
            "kind": "plan",
            "name": "Gold",
            "status": "active",
            "rank": 1,
            "grace_days": 0,
            "entitlements-TOTAL_FORMS": 0,
            "entitlements-INITIAL_FORMS": 0,
            "change_reason": "  ",
        },
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Item.objects.filter(key="gold").exists()
    assert not AuditEntry.objects.filter(source="admin").exists()


@pytest.mark.django_db
def test_admin_delete__without_reason__deletes_nothing(client):
    client.force_login(User.objects.create_superuser("ada", password="x"))
    override = factories.OverrideFactory()
    url = reverse("admin:subscriptions_override_delete", args=[override.pk])
    assert "change_reason" in client.get(url).content.decode()
    response = client.post(url, {"post": "yes"}, follow=True)
    assert "the reason is required" in response.content.decode()
    assert type(override).objects.filter(pk=override.pk).exists()
    response = client.post(url, {"post": "yes", "change_reason": "Entered by mistake"})
    assert response.status_code == 302
    assert not type(override).objects.filter(pk=override.pk).exists()
    entry = AuditEntry.objects.get(action="-", content_type__model="override")
    assert entry.reason == "Entered by mistake"


@pytest.mark.django_db
def test_admin_bulk_action__asks_for_a_reason_first(client):
    client.force_login(User.objects.create_superuser("ada", password="x"))
    override = factories.OverrideFactory()
    url = reverse("admin:subscriptions_override_changelist")
    form = {"action": "end_now", "_selected_action": [override.pk]}
    response = client.post(url, form)
    assert response.status_code == 200
    assert "Reason for this change" in response.content.decode()
    override.refresh_from_db()
    assert override.history.count() == 1  # nothing ended yet
    response = client.post(url, {**form, "apply_reason": "1", "change_reason": "Event is over"})
    assert response.status_code == 302
    override.refresh_from_db()
    assert override.history.first().history_change_reason == "Event is over"


@pytest.mark.django_db
def test_every_history_row__written_by_the_demo__has_reason_source_and_request_id(demo):
    for model in HISTORY_MODELS:
        for row in model.objects.all():
            assert row.history_change_reason.strip(), model
            assert row.source in SOURCES, model
            assert row.request_id is not None, model


@pytest.mark.django_db
def test_feature_tags__changed__recorded_with_old_and_new(demo):
    catalog = User.objects.get(username="catalog")
    feature = Feature.objects.get(key="4k-streaming")
    sales = factories.TagFactory(key="sales")
    catalog_services.feature_save(
        feature=feature, tags=[sales], actor=catalog, reason="Sales owns 4K now", source="shell"
    )
    entries = AuditEntry.objects.filter(
        content_type__model="feature", object_id=str(feature.pk), reason="Sales owns 4K now"
    ).order_by("id")
    changes = [c for e in entries for c in e.changes if c["field"] == "tags"]
    assert (changes[0]["old"], changes[-1]["new"]) == (["Support"], ["Sales"])


@pytest.mark.django_db
def test_bulk_create_audited__many_customers__each_with_history_and_audit_entry(
    django_assert_max_num_queries,
):
    from audit.bulk import bulk_create_audited

    customers = [Customer(external_id=f"bulk-{n}", name=f"Bulk {n}", country="DE") for n in range(500)]
    with pytest.raises(ChangeReasonRequired):
        bulk_create_audited(Customer, customers)
    assert not Customer.objects.exists()
    # Two batches of each: rows, history rows, audit entries; the content type; the savepoint.
    with (
        change_context(actor=None, reason="Migrated from the old billing system", source="import"),
        django_assert_max_num_queries(9),
    ):
        bulk_create_audited(Customer, customers, batch_size=250)
    assert Customer.objects.count() == 500
    rows = Customer.history.all()
    assert rows.count() == 500
    assert {(r.history_change_reason, r.source) for r in rows} == {
        ("Migrated from the old billing system", "import")
    }
    assert len({r.request_id for r in rows}) == 1
    assert AuditEntry.objects.filter(content_type__model="customer", source="import").count() == 500
