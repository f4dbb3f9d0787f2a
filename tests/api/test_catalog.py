"""Catalog endpoints: features, targeting rules, items, supersede, entitlements."""

from __future__ import annotations

import pytest

from catalog.api.serializers import FeatureOut
from catalog.models import Entitlement, Feature, Item
from segments.models import TargetingRule
from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db

SEATS = {
    "name": "Seats",
    "description": "Members of a team",
    "kind": "quantity",
    "levels": [10, 5, 20],
    "allow_unlimited": True,
    "markets": ["fr", "DE"],
    "keep_when_delinquent": False,
    "fallback": "last_known",
    "tags": ["sales"],
    "status": "active",
}


def test_feature_put__creates_201_then_replaces_200(db, api):
    created = api.put("features/seats", SEATS)

    assert created.status_code == 201
    assert created.json() == {
        "key": "seats",
        "name": "Seats",
        "description": "Members of a team",
        "kind": "quantity",
        "levels": [5, 10, 20],
        "min_value": None,
        "max_value": None,
        "allow_unlimited": True,
        "period": "",
        "period_anchor": "",
        "limit_type": "",
        "markets": ["DE", "FR"],
        "keep_when_delinquent": False,
        "fallback": "last_known",
        "tags": ["sales"],
        "status": "active",
    }

    replaced = api.put("features/seats", {"name": "Team seats", "kind": "quantity", "levels": [5]})

    assert replaced.status_code == 200
    # PUT replaces: what the body leaves out goes back to its default.
    assert replaced.json()["levels"] == [5]
    assert (replaced.json()["tags"], replaced.json()["markets"], replaced.json()["fallback"]) == (
        [],
        [],
        "deny",
    )


def test_feature_put__same_body_twice__no_second_history_row(db, api):
    assert api.put("features/seats", SEATS).status_code == 201
    rows = history_rows()

    again = api.put("features/seats", SEATS)

    assert again.status_code == 200
    assert history_rows() == rows


def test_feature_patch__changes_only_the_fields_given(demo, api):
    response = api.patch("features/max-members", {"description": "How many people a team may have."})

    assert response.status_code == 200
    feature = Feature.objects.get(key="max-members")
    assert feature.description == "How many people a team may have."
    assert feature.levels == [5, 10, 25, 50]
    assert [t.key for t in feature.tags.all()] == ["sales"]


def test_feature_patch__unknown__404(db, api):
    assert api.patch("features/nope", {"name": "x"}).status_code == 404


def test_feature_get_and_list(demo, reader):
    one = reader.get("features/live-sports")
    page = reader.get("features?limit=3")
    archived = reader.get("features?status=archived")

    assert one.json()["markets"] == ["GB", "IE"]
    assert [f["key"] for f in page.json()["results"]] == ["4k-streaming", "additional-users", "ai-tokens"]
    assert page.json()["next"] is not None
    assert archived.json()["results"] == []
    second = reader.get(page.json()["next"])
    assert second.json()["results"][0]["key"] == "api-calls"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "quantity", "levels": [5]}, "name"),
        ({"name": "x", "kind": "dial"}, "kind"),
        ({"name": 5, "kind": "switch"}, "name"),
        ({"name": "x", "kind": "switch", "allow_unlimited": "yes"}, "allow_unlimited"),
        ({"name": "x", "kind": "range", "min_value": "1", "max_value": 5}, "min_value"),
        ({"name": "x", "kind": "range", "min_value": 10, "max_value": 5}, "max_value"),
        ({"name": "x", "kind": "quantity", "levels": ["five"]}, "levels"),
        ({"name": "x", "kind": "switch", "markets": ["XX"]}, "markets"),
        ({"name": "x", "kind": "switch", "tags": ["no-such-tag"]}, "tags"),
        ({"name": "x", "kind": "switch", "colour": "blue"}, "colour"),
        ({"name": "x", "kind": "switch", "min_value": 2**40}, "min_value"),
    ],
)
def test_feature_put__invalid__400_naming_the_field_and_nothing_changes(db, api, body, field):
    rows = history_rows()

    response = api.put("features/seats", body)

    assert response.status_code == 400
    assert field in response.json()
    assert history_rows() == rows
    assert not Feature.objects.filter(key="seats").exists()


def test_feature_rules__put_the_ordered_list__get_it_back(demo, api, reader):
    response = api.put(
        "features/change-request-version",
        [{"segment": "beta", "value": "v2"}, {"segment": "basic-or-higher", "value": "v1"}],
        reason=None,
    )
    assert response.status_code == 400  # no reason: refused
    assert response.json()["code"] == "change_reason_required"

    response = api.put(
        "features/change-request-version/rules",
        [{"segment": "beta", "value": "v2"}, {"segment": "basic-or-higher", "value": "v1"}],
    )

    assert response.status_code == 200
    assert response.json() == [
        {"segment": "beta", "value": "v2"},
        {"segment": "basic-or-higher", "value": "v1"},
    ]
    assert reader.get("features/change-request-version/rules").json() == response.json()
    assert list(
        TargetingRule.objects.filter(feature__key="change-request-version").values_list(
            "segment__key", "position"
        )
    ) == [("beta", 1), ("basic-or-higher", 2)]


def test_feature_rules__same_list_twice__no_history(demo, api):
    rules = [{"segment": "beta", "value": "v2"}]
    rows = history_rows()

    assert api.put("features/change-request-version/rules", rules).status_code == 200

    assert history_rows() == rows


@pytest.mark.parametrize(
    "rules",
    [
        [{"segment": "no-such-segment", "value": "v2"}],
        [{"segment": "beta", "value": "v3"}],
        [{"segment": "beta", "value": "v2"}, {"segment": "beta", "value": "v1"}],
        {"segment": "beta", "value": "v2"},
        [{"segment": "beta"}],
        [{"segment": "beta", "value": "v2", "position": 1}],
    ],
    ids=["unknown-segment", "value-not-a-level", "segment-twice", "not-a-list", "no-value", "unknown-field"],
)
def test_feature_rules__invalid__400_and_nothing_changes(demo, api, rules):
    rows = history_rows()

    response = api.put("features/change-request-version/rules", rules)

    assert response.status_code == 400
    assert history_rows() == rows
    assert list(
        TargetingRule.objects.filter(feature__key="change-request-version").values_list("value", flat=True)
    ) == ["v2"]


def test_feature_rules__unknown_segment__the_error_names_the_rule(demo, api):
    response = api.put(
        "features/change-request/rules", [{"segment": "beta", "value": True}, {"segment": "x", "value": True}]
    )

    assert response.json() == [{}, {"segment": ["Unknown segment x."]}]


def test_item_put__creates_then_replaces__idempotent(db, api):
    body = {"kind": "plan", "name": "Gold", "rank": 40, "grace_days": 10, "external_id": "price_gold"}

    created = api.put("items/gold", body)
    rows = history_rows()
    again = api.put("items/gold", body)

    assert created.status_code == 201
    assert created.json() == {
        "key": "gold",
        "kind": "plan",
        "name": "Gold",
        "status": "active",
        "rank": 40,
        "grace_days": 10,
        "external_id": "price_gold",
        "superseded_by": None,
        "entitlements": {},
    }
    assert again.status_code == 200
    assert history_rows() == rows


def test_item_get__lists_its_entitlements(demo, reader):
    item = reader.get("items/business").json()

    assert item["entitlements"] == {"max-members": 25, "data-export": True, "ai-tokens": 2_000_000}


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "plan", "name": "x", "grace_days": -1},
        {"kind": "plan", "name": "x", "rank": 1.5},
        {"kind": "bundle", "name": "x"},
        {"kind": "plan", "name": "x", "external_id": None},
        {"kind": "plan"},
    ],
)
def test_item_put__invalid__400(db, api, body):
    assert api.put("items/gold", body).status_code == 400
    assert not Item.objects.filter(key="gold").exists()


def test_supersede__copies_the_plan_and_makes_the_old_one_legacy(demo, api):
    response = api.post("items/business/supersede", {"new_key": "business-2027"})

    assert response.status_code == 201
    assert response.json()["key"] == "business-2027"
    assert response.json()["entitlements"] == {"max-members": 25, "data-export": True, "ai-tokens": 2_000_000}
    old = api.get("items/business").json()
    assert (old["status"], old["superseded_by"]) == ("legacy", "business-2027")


def test_supersede__to_an_existing_key__409_and_nothing_changes(demo, api):
    rows = history_rows()

    response = api.post("items/business/supersede", {"new_key": "enterprise"})

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert history_rows() == rows


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("items/extra-seats/supersede", {"new_key": "x"}, 400),  # an add-on
        ("items/business-2024/supersede", {"new_key": "x"}, 400),  # already legacy
        ("items/nope/supersede", {"new_key": "x"}, 404),
        ("items/business/supersede", {"new_key": "not a slug"}, 400),
        ("items/business/supersede", {}, 400),
    ],
)
def test_supersede__refused(demo, api, path, body, status):
    rows = history_rows()

    assert api.post(path, body).status_code == status
    assert history_rows() == rows


def test_entitlement__put_creates_201_replaces_200_same_again_no_history(demo, api):
    created = api.put("items/starter/entitlements/data-export", {"value": True})
    replaced = api.put("items/starter/entitlements/max-members", {"value": 10})
    rows = history_rows()
    again = api.put("items/starter/entitlements/max-members", {"value": "10"})

    assert created.status_code == 201
    assert created.json() == {"item": "starter", "feature": "data-export", "value": True}
    assert replaced.status_code == 200
    assert again.status_code == 200
    assert history_rows() == rows


@pytest.mark.parametrize(
    ("feature", "value"),
    [
        ("max-members", 7),
        ("max-members", "lots"),
        ("data-export", False),
        ("api-calls-per-day", 5000),
        ("support-level", "phone"),
        ("max-simultaneous-streams", "unlimited"),
        ("max-members", None),
    ],
)
def test_entitlement__value_not_fitting_the_feature__400_and_nothing_changes(demo, api, feature, value):
    rows = history_rows()

    response = api.put(f"items/starter/entitlements/{feature}", {"value": value})

    assert response.status_code == 400
    assert "value" in response.json()
    assert history_rows() == rows


def test_entitlement__delete__204_then_404(demo, api):
    assert api.delete("items/business/entitlements/data-export").status_code == 204
    assert not Entitlement.objects.filter(item__key="business", feature__key="data-export").exists()
    assert api.delete("items/business/entitlements/data-export").status_code == 404
    assert api.get("items/business/entitlements/data-export").status_code == 404


@pytest.mark.parametrize("path", ["items/nope/entitlements/max-members", "items/business/entitlements/nope"])
def test_entitlement__unknown_item_or_feature__404(demo, api, path):
    assert api.put(path, {"value": True}).status_code == 404


# --- Product: the targeting rules of its features, never their definition ------------------------


def product_api(api_for):
    from django.contrib.auth.models import User

    return api_for(User.objects.get(username="product"), "write")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("patch", {"status": "archived"}),
        ("patch", {"fallback": "allow"}),
        ("patch", {"markets": ["GB"]}),
        ("patch", {"levels": ["v1", "v2", "v3"]}),
        ("patch", {"name": "Renamed"}),
        ("put", {"name": "Change request version", "kind": "switch"}),
    ],
)
def test_feature_write__product_key_changes_the_definition__403_nothing_changed_no_history(
    demo, api_for, method, body
):
    api = product_api(api_for)
    before = FeatureOut(Feature.objects.get(key="change-request-version")).data
    rows = history_rows()

    response = getattr(api, method)("features/change-request-version", body)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "targeting rules" in response.json()["detail"]
    assert FeatureOut(Feature.objects.get(key="change-request-version")).data == before
    assert history_rows() == rows


def test_feature_patch__product_key_sends_the_definition_unchanged__200_nothing_recorded(demo, api_for):
    api = product_api(api_for)
    rows = history_rows()

    response = api.patch("features/change-request-version", {"status": "active"})

    assert response.status_code == 200
    assert history_rows() == rows


def test_feature_rules__product_key_puts_its_rules__200_and_stored_in_order(demo, api_for):
    api = product_api(api_for)

    response = api.put(
        "features/change-request-version/rules",
        [{"segment": "basic-or-higher", "value": "v1"}, {"segment": "beta", "value": "v2"}],
    )

    assert response.status_code == 200
    assert list(
        TargetingRule.objects.filter(feature__key="change-request-version").values_list(
            "segment__key", "position", "value"
        )
    ) == [("basic-or-higher", 1, "v1"), ("beta", 2, "v2")]


def test_feature_rules__product_key_on_a_feature_not_tagged_for_product__403(demo, api_for):
    api = product_api(api_for)

    response = api.put("features/max-members/rules", [{"segment": "beta", "value": 25}])

    assert response.status_code == 403
    assert not TargetingRule.objects.filter(feature__key="max-members").exists()
