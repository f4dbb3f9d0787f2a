"""Writes from a shell or a management command are recorded with who and why, or refused:
fixtures (loaddata), the base manager's bulk update, and an audited relation's rows."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import transaction

from audit.models import AuditEntry
from catalog.models import Feature, Tag
from subscriptions.models import Customer
from tests import factories
from tests.audit.test_history import TRACKED
from toolkit.change_context import ChangeReasonRequired, change_context

pytestmark = pytest.mark.django_db

AUDITED_RELATIONS = [
    pytest.param(Feature, "tags", id="feature-tags"),
    pytest.param(Tag, "groups", id="tag-groups"),
    pytest.param(apps.get_model("segments", "Segment"), "tags", id="segment-tags"),
]


@pytest.fixture
def customer_fixture(tmp_path):
    path = tmp_path / "customers.json"
    rows = [
        {
            "model": "subscriptions.customer",
            "fields": {
                "external_id": "fixture-co",
                "name": "Fixture Co",
                "created_at": "2026-01-05T10:00:00Z",
            },
        }
    ]
    path.write_text(json.dumps(rows))
    return path


def test_loaddata__tracked_rows_without_a_reason__loads_nothing(customer_fixture):
    with pytest.raises(ChangeReasonRequired):
        call_command("loaddata", str(customer_fixture), verbosity=0)

    assert not Customer.objects.filter(external_id="fixture-co").exists()
    assert not AuditEntry.objects.filter(object_repr__contains="fixture-co").exists()


def test_loaddata__with_a_reason_and_user__records_who_and_why(customer_fixture):
    admin = factories.SuperuserFactory(username="restorer")

    call_command(
        "loaddata", str(customer_fixture), reason="Restore from backup OPS-7", user="restorer", verbosity=0
    )

    customer = Customer.objects.get(external_id="fixture-co")
    row = customer.history.get()
    assert (row.history_type, row.history_user, row.history_change_reason) == (
        "+",
        admin,
        "Restore from backup OPS-7",
    )
    entry = AuditEntry.objects.get(object_id=str(customer.pk), content_type__model="customer")
    assert (entry.user, entry.source, entry.reason) == (admin, "shell", "Restore from backup OPS-7")


@pytest.mark.parametrize("model", TRACKED, ids=lambda m: m._meta.label)
def test_base_manager_update__on_a_tracked_model__is_refused(model):
    with pytest.raises(ChangeReasonRequired):
        model._base_manager.update(pk=1)


def test_base_manager_update__refused__changes_nothing():
    customer = factories.CustomerFactory(name="Before")

    with pytest.raises(ChangeReasonRequired):
        Customer._base_manager.filter(pk=customer.pk).update(name="After")

    customer.refresh_from_db()
    assert customer.name == "Before"


@pytest.mark.parametrize(("model", "relation"), AUDITED_RELATIONS)
def test_relation_rows__written_directly__are_refused(model, relation):
    through = model._meta.get_field(relation).remote_field.through
    owner_field, target_field = (f for f in through._meta.concrete_fields if f.is_relation)
    owner = _one(owner_field.related_model)
    target = _one(target_field.related_model)

    row = {owner_field.name: owner, target_field.name: target}

    with change_context(actor=None, reason="Sneaking a row in", source="shell"):
        with pytest.raises(ChangeReasonRequired), transaction.atomic():
            through.objects.create(**row)
        with pytest.raises(ChangeReasonRequired), transaction.atomic():
            through.objects.bulk_create([through(**row)])
        with pytest.raises(ChangeReasonRequired), transaction.atomic():
            through(**row).save()
    assert not through.objects.filter(**row).exists()


def test_relation_rows__deleted_directly__are_refused_and_remain(audited):
    feature = factories.FeatureFactory()
    tag = Tag.objects.get(key="sales")
    feature.tags.add(tag)

    with pytest.raises(ChangeReasonRequired):
        Feature.tags.through.objects.filter(feature=feature).delete()

    assert list(feature.tags.all()) == [tag]


def test_relation__changed_through_its_manager__is_recorded(audited):
    feature = factories.FeatureFactory()
    sales, support = Tag.objects.get(key="sales"), Tag.objects.get(key="support")

    feature.tags.add(sales)
    feature.tags.set([support])
    feature.tags.clear()

    changes = [
        entry.changes[0]["new"]
        for entry in AuditEntry.objects.filter(object_id=str(feature.pk), content_type__model="feature")
        .exclude(action="+")
        .order_by("id")
    ]
    # set() is a clear and an add: each step is an entry with the relation as it became
    assert changes == [["Sales"], [], ["Support"], []]
    assert not feature.tags.exists()


def _one(model):
    makers = {
        "catalog.Feature": factories.FeatureFactory,
        "catalog.Tag": factories.TagFactory,
        "segments.Segment": factories.SegmentFactory,
        "auth.Group": lambda: apps.get_model("auth", "Group").objects.create(name="Somebody"),
    }
    return makers[model._meta.label]()
