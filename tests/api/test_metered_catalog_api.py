"""Metered features over the catalog endpoints: a feature's period, period anchor and limit type
are written and read back, a plan's limit is a whole number or "unlimited", and bad input is a
400 naming the field that changes nothing."""

from __future__ import annotations

import pytest

from catalog.models import Entitlement, Feature
from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db

CREDITS = {
    "name": "API credits",
    "description": "Calls to the public API",
    "kind": "metered",
    "period": "month",
    "period_anchor": "calendar",
    "limit_type": "hard",
    "allow_unlimited": True,
    "tags": ["sales"],
}


def metering(body: dict) -> tuple:
    return body["kind"], body["period"], body["period_anchor"], body["limit_type"], body["allow_unlimited"]


# --- features ------------------------------------------------------------------------------------


def test_feature_put__metered__201_with_its_metering_then_get_returns_it(db, api, reader):
    created = api.put("features/api-credits", CREDITS)

    assert created.status_code == 201
    assert metering(created.json()) == ("metered", "month", "calendar", "hard", True)
    assert (created.json()["levels"], created.json()["min_value"], created.json()["max_value"]) == (
        [],
        None,
        None,
    )
    assert reader.get("features/api-credits").json() == created.json()
    stored = Feature.objects.get(key="api-credits")
    assert (stored.period, stored.period_anchor, stored.limit_type) == ("month", "calendar", "hard")


def test_feature_put__same_metered_body_twice__no_second_history_row(db, api):
    assert api.put("features/api-credits", CREDITS).status_code == 201
    rows = history_rows()

    again = api.put("features/api-credits", CREDITS)

    assert again.status_code == 200
    assert history_rows() == rows


def test_feature_get__other_kinds__empty_metering(demo, reader):
    body = reader.get("features/max-members").json()

    assert (body["kind"], body["period"], body["period_anchor"], body["limit_type"]) == (
        "quantity",
        "",
        "",
        "",
    )


def test_feature_get__demo_metered_features__as_seeded(demo, reader):
    assert metering(reader.get("features/api-calls").json()) == (
        "metered",
        "month",
        "billing_cycle",
        "hard",
        False,
    )
    assert metering(reader.get("features/ai-tokens").json()) == ("metered", "month", "calendar", "soft", True)


def test_feature_list__kind_metered__only_metered_features(demo, reader):
    response = reader.get("features?kind=metered")

    assert response.status_code == 200
    assert [feature["key"] for feature in response.json()["results"]] == ["ai-tokens", "api-calls"]


def test_feature_patch__one_of_the_three__only_it_changes(demo, api):
    response = api.patch("features/api-calls", {"period": "week", "limit_type": "soft"})

    assert response.status_code == 200
    assert metering(response.json()) == ("metered", "week", "billing_cycle", "soft", False)
    stored = Feature.objects.get(key="api-calls")
    assert (stored.period, stored.period_anchor, stored.limit_type) == ("week", "billing_cycle", "soft")
    assert stored.history.latest().history_change_reason == "Billing sync, ticket OPS-42"


def test_feature_patch__metered_to_switch__metering_emptied(demo, api):
    response = api.patch("features/api-calls", {"kind": "switch"})

    assert response.status_code == 200
    assert metering(response.json()) == ("switch", "", "", "", False)


def test_feature_patch__switch_to_metered_without_its_three__400_naming_each_and_nothing_changes(demo, api):
    rows = history_rows()

    response = api.patch("features/data-export", {"kind": "metered"})

    assert response.status_code == 400
    assert response.json() == {
        "period": ["A metered feature needs its period."],
        "period_anchor": ["A metered feature needs its period anchor."],
        "limit_type": ["A metered feature needs its limit type."],
    }
    assert Feature.objects.get(key="data-export").kind == "switch"
    assert history_rows() == rows


def test_feature_patch__switch_to_metered_with_its_three__saved(demo, api):
    body = {"kind": "metered", "period": "day", "period_anchor": "calendar", "limit_type": "soft"}

    response = api.patch("features/data-export", body)

    assert response.status_code == 200
    assert metering(response.json()) == ("metered", "day", "calendar", "soft", False)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"period": ""}, "period"),
        ({"period_anchor": ""}, "period_anchor"),
        ({"limit_type": ""}, "limit_type"),
        ({"period": "fortnight"}, "period"),
        ({"period": "Month"}, "period"),
        ({"period": "month\x00"}, "period"),
        ({"period": None}, "period"),
        ({"period": 30}, "period"),
        ({"period": ["month"]}, "period"),
        ({"period_anchor": "billing-cycle"}, "period_anchor"),
        ({"period_anchor": {"calendar": True}}, "period_anchor"),
        ({"limit_type": "strict"}, "limit_type"),
        ({"limit_type": True}, "limit_type"),
        ({"limit_type": "h" * 10_000}, "limit_type"),
        ({"kind": "meter"}, "kind"),
        ({"kind": "metered\x00"}, "kind"),
        ({"allow_unlimited": "yes"}, "allow_unlimited"),
        ({"levels": [5, 10]}, "levels"),
        ({"min_value": 1, "max_value": 2**40}, "max_value"),
        ({"periods": "month"}, "periods"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_feature_put__metered_with_bad_input__400_naming_the_field_and_nothing_created(
    db, api, changes, field
):
    rows = history_rows()

    response = api.put("features/api-credits", {**CREDITS, **changes})

    assert response.status_code == 400
    assert field in response.json()
    assert not Feature.objects.filter(key="api-credits").exists()
    assert history_rows() == rows


@pytest.mark.parametrize(
    "changes",
    [{"period": "fortnight"}, {"period": ""}, {"limit_type": None}, {"period_anchor": "cal\x00endar"}],
    ids=lambda value: repr(value),
)
def test_feature_patch__existing_metered_with_bad_input__400_and_nothing_changes(demo, api, changes):
    rows = history_rows()

    response = api.patch("features/api-calls", changes)

    assert response.status_code == 400
    assert set(response.json()) == set(changes)
    stored = Feature.objects.get(key="api-calls")
    assert (stored.period, stored.period_anchor, stored.limit_type) == ("month", "billing_cycle", "hard")
    assert history_rows() == rows


def test_feature_put__huge_number_anywhere__400_and_nothing_created(db, api):
    raw = (
        '{"name": "API credits", "kind": "metered", "period": "month", "period_anchor": "calendar", '
        '"limit_type": "hard", "min_value": 100000000000000000000000000000}'
    )

    response = api.put("features/api-credits", raw=raw)

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"].endswith("see min_value.")
    assert not Feature.objects.filter(key="api-credits").exists()


# --- a plan's limit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "value"),
    [("api-calls", 1000), ("api-calls", 0), ("api-calls", 2_147_483_647), ("ai-tokens", "unlimited")],
)
def test_entitlement_put__metered_limit__saved_and_read_back(demo, api, reader, feature, value):
    response = api.put(f"items/starter/entitlements/{feature}", {"value": value})

    assert response.status_code == 201
    assert response.json() == {"item": "starter", "feature": feature, "value": value}
    assert reader.get(f"items/starter/entitlements/{feature}").json()["value"] == value
    assert reader.get("items/starter").json()["entitlements"][feature] == value


def test_entitlement_put__metered_limit_replaced__200_and_one_history_row(demo, api):
    rows = history_rows()

    response = api.put("items/basic/entitlements/api-calls", {"value": 5000})

    assert response.status_code == 200
    assert Entitlement.objects.get(item__key="basic", feature__key="api-calls").value == 5000
    assert history_rows() == rows + 2  # the entitlement's history row and its audit log mirror
    assert api.put("items/basic/entitlements/api-calls", {"value": 5000}).status_code == 200
    assert history_rows() == rows + 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "-1 is below zero: give a whole number, 0 or more."),
        (2_147_483_648, "2147483648 is too large: at most 2,147,483,647 may be granted."),
        (2**63 - 1, f"{2**63 - 1} is too large: at most 2,147,483,647 may be granted."),
        (1.5, "1.5 is not a whole number: give a whole number, 0 or more."),
        (True, "on is not a whole number: give a whole number, 0 or more."),
        ("lots", "“lots” is not a whole number: give a whole number, 0 or more."),
        ("unlimited", "api-calls does not allow unlimited: give a whole number."),
        ([1000], "[1000] is not a whole number: give a whole number, 0 or more."),
        ({"limit": 1000}, "{'limit': 1000} is not a whole number: give a whole number, 0 or more."),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_entitlement_put__metered_value_that_is_no_limit__400_naming_value_and_nothing_changes(
    demo, api, value, message
):
    rows = history_rows()

    response = api.put("items/basic/entitlements/api-calls", {"value": value})

    assert response.status_code == 400
    assert response.json() == {"value": [message]}
    assert Entitlement.objects.get(item__key="basic", feature__key="api-calls").value == 1000
    assert history_rows() == rows


@pytest.mark.parametrize(
    "raw",
    [
        '{"value": 100000000000000000000000000000}',
        '{"value": "1000\\u0000"}',
        '{"value": null}',
        "{}",
        '{"value": 1000, "period": "day"}',
    ],
    ids=["beyond-64-bits", "nul", "null", "no-value", "unknown-field"],
)
def test_entitlement_put__malformed_body__400_and_nothing_changes(demo, api, raw):
    rows = history_rows()

    response = api.put("items/basic/entitlements/api-calls", raw=raw)

    assert response.status_code == 400
    assert Entitlement.objects.get(item__key="basic", feature__key="api-calls").value == 1000
    assert history_rows() == rows


def test_feature_rules__metered_limit_served_to_a_segment__saved_and_a_bad_one_refused(demo, api):
    saved = api.put("features/api-calls/rules", [{"segment": "beta", "value": 50_000}])
    refused = api.put("features/api-calls/rules", [{"segment": "beta", "value": -5}])

    assert saved.status_code == 200
    assert saved.json() == [{"segment": "beta", "value": 50_000}]
    assert refused.status_code == 400
    assert refused.json() == {"value": ["-5 is below zero: give a whole number, 0 or more."]}
    assert api.get("features/api-calls/rules").json() == [{"segment": "beta", "value": 50_000}]


# --- the schema ------------------------------------------------------------------------------------


def test_schema__feature_bodies_name_the_metering_with_their_choices(db, client):
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]

    def choices(component: str, field: str) -> set:
        spec = components[component]["properties"][field]
        refs = [spec, *spec.get("oneOf", []), *spec.get("allOf", [])]
        values: set = set()
        for ref in refs:
            if "$ref" in ref:
                values |= set(components[ref["$ref"].rsplit("/", 1)[1]]["enum"])
            values |= set(ref.get("enum", []))
        return values

    for body in ("FeatureInRequest", "PatchedFeatureInRequest", "FeatureOut"):
        assert choices(body, "period") == {"day", "week", "month", "year", ""}, body
        assert choices(body, "period_anchor") == {"calendar", "billing_cycle", ""}, body
        assert choices(body, "limit_type") == {"hard", "soft", ""}, body
    assert "metered" in choices("FeatureInRequest", "kind")
