"""Writes to the catalog through its services, on PostgreSQL: the rules they keep and the
history they leave."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from catalog import services
from catalog.models import Entitlement, Feature, Item
from tests import factories as f
from toolkit.change_context import ChangeReasonRequired, change_context

pytestmark = pytest.mark.django_db

WHO = {"actor": None, "reason": "Ticket CAT-9", "source": "shell"}


@pytest.fixture
def features(db):
    with change_context(actor=None, reason="Test data", source="shell"):
        return {
            "max-members": f.FeatureFactory(key="max-members", quantity=True, allow_unlimited=True),
            "data-export": f.FeatureFactory(key="data-export"),
            "support-level": f.FeatureFactory(key="support-level", custom=True),
        }


@pytest.fixture
def business(features):
    with change_context(actor=None, reason="Test data", source="shell"):
        plan = f.ItemFactory(key="business", name="Business", rank=20, grace_days=14, external_id="bill-1")
        f.EntitlementFactory(item=plan, feature=features["max-members"], value=25)
        f.EntitlementFactory(item=plan, feature=features["data-export"], value=True)
    return plan


# --- features -----------------------------------------------------------------------------------


def test_feature_save__key_changed__refused_and_key_kept(features):
    feature = Feature.objects.get(key="max-members")
    history_before = feature.history.count()
    feature.key = "max-seats"

    with pytest.raises(ValidationError) as error:
        services.feature_save(feature=feature, **WHO)

    assert error.value.message_dict["key"] == ["A feature's key never changes: applications depend on it."]
    assert Feature.objects.filter(key="max-members").exists()
    assert not Feature.objects.filter(key="max-seats").exists()
    assert feature.history.count() == history_before


def test_feature_save__new_quantity_feature__levels_sorted_and_history_says_why():
    feature = services.feature_save(
        feature=Feature(key="seats", name="Seats", kind="quantity", levels=[20, 5, 10]), **WHO
    )

    feature.refresh_from_db()
    assert feature.levels == [5, 10, 20]
    row = feature.history.get()
    assert (row.history_type, row.history_change_reason, row.source) == ("+", "Ticket CAT-9", "shell")


@pytest.mark.parametrize("markets", [[], ["GB", "IE"]], ids=["everywhere", "two-markets"])
def test_feature_save__unchanged__records_no_new_history_row(db, markets):
    with change_context(actor=None, reason="Test data", source="shell"):
        f.FeatureFactory(key="live-sports", markets=markets, tags=[f.TagFactory()])
    feature = Feature.objects.get(key="live-sports")
    history_before = feature.history.count()

    services.feature_save(feature=feature, tags=list(feature.tags.all()), **WHO)

    assert feature.history.count() == history_before


def test_feature_save__levels_changed_in_place__recorded_in_history(features):
    feature = Feature.objects.get(key="max-members")
    feature.levels.append(100)

    services.feature_save(feature=feature, **WHO)

    assert Feature.objects.get(key="max-members").levels == [5, 10, 25, 50, 100]
    assert feature.history.latest().levels == [5, 10, 25, 50, 100]


def test_feature_save__name_changed__one_history_row_with_the_new_name(features):
    feature = Feature.objects.get(key="max-members")
    history_before = feature.history.count()
    feature.name = "Seats"

    services.feature_save(feature=feature, **WHO)

    assert feature.history.count() == history_before + 1
    assert feature.history.latest().name == "Seats"


# --- items and supersede ------------------------------------------------------------------------


def test_item_supersede__active_plan__copied_with_entitlements_and_old_one_legacy(business):
    successor = services.item_supersede(item=business, new_key="business-2027", new_name="Business 27", **WHO)

    successor.refresh_from_db()
    business.refresh_from_db()
    assert (successor.key, successor.name, successor.status, successor.rank, successor.grace_days) == (
        "business-2027",
        "Business 27",
        "active",
        20,
        14,
    )
    # The billing id stays with the plan its subscribers are on.
    assert (successor.external_id, business.external_id) == ("", "bill-1")
    assert sorted((e.feature.key, e.value) for e in successor.entitlements.all()) == [
        ("data-export", True),
        ("max-members", 25),
    ]
    assert (business.status, business.superseded_by) == ("legacy", successor)
    assert sorted((e.feature.key, e.value) for e in business.entitlements.all()) == [
        ("data-export", True),
        ("max-members", 25),
    ]
    assert business.history.latest().history_change_reason == "Ticket CAT-9"


def test_item_supersede__no_new_name__successor_named_after_old_name_and_new_key(business):
    successor = services.item_supersede(item=business, new_key="business-2027", **WHO)

    business.refresh_from_db()
    assert successor.name == "Business (business-2027)"
    assert business.name == "Business"  # the two can be told apart in any list


def test_item_supersede__key_already_taken__refused_and_nothing_changed(business):
    with change_context(actor=None, reason="Test data", source="shell"):
        f.ItemFactory(key="business-2027")
    items_before = Item.objects.count()

    with pytest.raises(ValidationError) as error:
        services.item_supersede(item=business, new_key="business-2027", **WHO)

    assert error.value.message_dict["new_key"] == ["An item with the key business-2027 already exists."]
    business.refresh_from_db()
    assert business.status == "active"
    assert Item.objects.count() == items_before


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"addon": True}, "Only plans can be superseded"),
        ({"legacy": True}, "only an active plan can be superseded"),
    ],
    ids=["addon", "legacy-plan"],
)
def test_item_supersede__not_an_active_plan__refused(db, traits, message):
    with change_context(actor=None, reason="Test data", source="shell"):
        item = f.ItemFactory(**traits)

    with pytest.raises(ValidationError, match=message):
        services.item_supersede(item=item, new_key="successor", **WHO)

    assert not Item.objects.filter(key="successor").exists()


def test_item_save__unchanged__records_no_new_history_row(business):
    item = Item.objects.get(pk=business.pk)
    history_before = item.history.count()

    services.item_save(item=item, **WHO)

    assert item.history.count() == history_before


# --- entitlements -------------------------------------------------------------------------------


def test_entitlement_put__feature_already_on_the_item__value_replaced_in_the_same_row(business, features):
    before = Entitlement.objects.get(item=business, feature=features["max-members"])

    after, _ = services.entitlement_put(item_key="business", feature_key="max-members", value=50, **WHO)

    assert after.pk == before.pk
    assert list(
        Entitlement.objects.filter(item=business, feature=features["max-members"]).values_list("value")
    ) == [(50,)]
    assert [row.value for row in after.history.order_by("history_id")] == [25, 50]


def test_entitlement_put__text_level_typed__stored_as_the_canonical_value(business, features):
    entitlement, _ = services.entitlement_put(
        item_key="business", feature_key="max-members", value=" Unlimited ", **WHO
    )

    entitlement.refresh_from_db()
    assert entitlement.value == "unlimited"


def test_entitlement_put__same_value_again__records_no_new_history_row(business, features):
    entitlement = Entitlement.objects.get(item=business, feature=features["max-members"])
    history_before = entitlement.history.count()

    services.entitlement_put(item_key="business", feature_key="max-members", value=25, **WHO)

    assert entitlement.history.count() == history_before


@pytest.mark.parametrize(
    ("feature", "value"),
    [("max-members", 7), ("data-export", False), ("support-level", "phone")],
    ids=["quantity-not-a-level", "switch-false", "custom-not-a-level"],
)
def test_entitlement_put__value_that_does_not_fit__refused_and_nothing_saved(
    business, features, feature, value
):
    before = list(Entitlement.objects.filter(item=business).values_list("feature__key", "value"))

    with pytest.raises(ValidationError) as error:
        services.entitlement_put(item_key="business", feature_key=feature, value=value, **WHO)

    assert "value" in error.value.message_dict
    assert list(Entitlement.objects.filter(item=business).values_list("feature__key", "value")) == before


# --- change control -----------------------------------------------------------------------------


def test_feature_write__outside_a_change_context__raises_and_saves_nothing(db):
    with pytest.raises(ChangeReasonRequired):
        Feature(key="sneaky", name="Sneaky").save()

    assert not Feature.objects.filter(key="sneaky").exists()


def test_entitlement_delete__outside_a_change_context__raises_and_row_kept(business):
    entitlement = business.entitlements.first()

    with pytest.raises(ChangeReasonRequired), transaction.atomic():
        entitlement.delete()

    assert Entitlement.objects.filter(pk=entitlement.pk).exists()


def test_feature_tags__changed_outside_a_change_context__raises(features):
    with change_context(actor=None, reason="Test data", source="shell"):
        tag = f.TagFactory()

    with pytest.raises(ChangeReasonRequired):
        features["data-export"].tags.add(tag)


@pytest.mark.parametrize("model", [Feature, Item, Entitlement], ids=lambda m: m.__name__)
def test_queryset_update__on_a_tracked_model__raises_and_changes_nothing(business, model):
    before = list(model.objects.order_by("pk").values())

    with pytest.raises(ChangeReasonRequired), change_context(**{**WHO, "reason": "bulk"}):
        model.objects.update(**{"value": 1} if model is Entitlement else {"name": "Renamed"})

    assert list(model.objects.order_by("pk").values()) == before


def test_bulk_create__on_a_tracked_model__raises(db):
    with pytest.raises(ChangeReasonRequired), change_context(**WHO):
        Feature.objects.bulk_create([Feature(key="a", name="A"), Feature(key="b", name="B")])

    assert not Feature.objects.filter(key__in=["a", "b"]).exists()


# --- Product: targeting rules yes, definition no -------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "archived"),
        ("kind", "switch"),
        ("levels", ["v1", "v2", "v3"]),
        ("markets", ["GB"]),
        ("fallback", "allow"),
        ("keep_when_delinquent", True),
        ("name", "Renamed"),
        ("description", "Changed"),
    ],
)
def test_feature_save__product_changes_the_definition__refused_and_nothing_changed(demo, field, value):
    from django.contrib.auth.models import User
    from django.core.exceptions import PermissionDenied

    product = User.objects.get(username="product")
    feature = Feature.objects.get(key="change-request-version")
    setattr(feature, field, value)

    with pytest.raises(PermissionDenied, match="only the targeting rules"):
        services.feature_save(feature=feature, actor=product, reason="Try", source="shell")

    stored = Feature.objects.get(key="change-request-version")
    assert (stored.status, stored.kind, stored.levels, stored.fallback) == (
        "active",
        "custom",
        ["v1", "v2"],
        "deny",
    )
    assert stored.name == "Change request version"


def test_feature_save__product_saves_its_feature_unchanged__allowed_and_nothing_recorded(demo):
    from django.contrib.auth.models import User

    product = User.objects.get(username="product")
    feature = Feature.objects.get(key="change-request-version")
    rows = feature.history.count()

    services.feature_save(feature=feature, actor=product, reason="Rules only", source="admin")

    assert feature.history.count() == rows


def test_scheduled_feature_change__by_product_changing_the_status__fails_and_nothing_changed(demo):
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    from audit.models import ScheduledChange
    from audit.scheduling import schedule_change, sweep_due_changes

    product = User.objects.get(username="product")
    change = schedule_change(
        method="PATCH",
        path="/api/v1/features/change-request-version",
        body={"status": "archived"},
        effective_at=timezone.now() + timedelta(hours=1),
        actor=product,
        reason="Archive the beta",
        source="admin",
    )

    sweep_due_changes(now=timezone.now() + timedelta(hours=2))

    change.refresh_from_db()
    assert change.status == ScheduledChange.Status.FAILED
    assert change.error.startswith("403")
    assert Feature.objects.get(key="change-request-version").status == "active"
