"""Customer, subscription and override endpoints: billing sync's writes."""

from __future__ import annotations

import pytest

from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db

SUBSCRIPTION = {
    "customer": "acme",
    "plan": "starter",
    "status": "trialing",
    "trial_ends_at": "2030-01-31T00:00:00Z",
    "current_period_end": "2030-01-31T00:00:00Z",
    "past_due_since": None,
    "addons": [{"addon": "extra-seats", "quantity": 2}],
}


def test_customer_put__creates_then_replaces__idempotent(db, api):
    body = {"name": "Initrode", "country": "de", "traits": {"industry": "media", "seats": 40}}

    created = api.put("customers/initrode", body)
    rows = history_rows()
    again = api.put("customers/initrode", body)

    assert created.status_code == 201
    assert {k: v for k, v in created.json().items() if k != "created_at"} == {
        "external_id": "initrode",
        "name": "Initrode",
        "country": "DE",
        "traits": {"industry": "media", "seats": 40},
    }
    assert created.json()["created_at"].endswith("Z")
    assert again.status_code == 200
    assert history_rows() == rows


def test_customer_patch__only_given_fields(demo, api):
    response = api.patch("customers/acme", {"traits": {"industry": "anvils"}})

    assert response.status_code == 200
    customer = Customer.objects.get(external_id="acme")
    assert (customer.name, str(customer.country), customer.traits) == (
        "Acme Corp",
        "US",
        {"industry": "anvils"},
    )


def test_customer_list__by_external_id__filtered_by_country(demo, reader):
    page = reader.get("customers?country=de").json()

    assert [c["external_id"] for c in page["results"]] == ["globex", "northwind"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "country": "ZZ"}, "country"),
        ({"name": "x", "traits": ["a"]}, "traits"),
        ({"name": "x", "traits": {"a": "\u0000"}}, "traits"),
        ({"name": ["x"]}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"country": "DE"}, "name"),
        ({"name": "x", "external_id": "y"}, "external_id"),
    ],
)
def test_customer_put__invalid__400_and_nothing_changes(db, api, body, field):
    rows = history_rows()

    response = api.put("customers/initrode", body)

    assert response.status_code == 400
    assert field in response.json()
    assert history_rows() == rows


def test_subscription_put__creates_with_addons_then_same_body__no_history(demo, api):
    created = api.put("subscriptions/sub-acme-2", SUBSCRIPTION)
    rows = history_rows()
    again = api.put("subscriptions/sub-acme-2", SUBSCRIPTION)

    assert created.status_code == 201
    body = created.json()
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "external_id": "sub-acme-2",
        "customer": "acme",
        "plan": "starter",
        "status": "trialing",
        "trial_ends_at": "2030-01-31T00:00:00Z",
        "current_period_end": "2030-01-31T00:00:00Z",
        "past_due_since": None,
        "addons": [{"addon": "extra-seats", "quantity": 2}],
    }
    assert again.status_code == 200
    assert history_rows() == rows


def test_subscription_put__replaces_addons(demo, api):
    api.put("subscriptions/sub-acme-2", SUBSCRIPTION)

    response = api.put("subscriptions/sub-acme-2", {**SUBSCRIPTION, "addons": []})

    assert response.json()["addons"] == []
    assert not SubscriptionAddon.objects.filter(subscription__external_id="sub-acme-2").exists()


def test_subscription_patch__plan_change_reaches_the_check(demo, api, reader):
    assert reader.get("customers/acme/entitlements/max-members").json()["value"] == 35

    response = api.patch("subscriptions/sub-acme", {"plan": "enterprise"})

    assert response.status_code == 200
    answer = reader.get("customers/acme/entitlements/max-members").json()
    assert (answer["unlimited"], answer["source"]) == (True, "plan:enterprise")


def test_subscription_list__filters(demo, reader):
    by_customer = reader.get("subscriptions?customer=acme").json()["results"]
    by_status = reader.get("subscriptions?status=past_due").json()["results"]

    assert [s["external_id"] for s in by_customer] == ["sub-acme"]
    assert [s["external_id"] for s in by_status] == ["sub-hooli", "sub-umbrella"]


def test_subscription_put__legacy_plan_for_a_new_subscription__400_and_nothing_changes(demo, api):
    rows = history_rows()

    response = api.put("subscriptions/sub-new", {**SUBSCRIPTION, "plan": "business-2024"})

    assert response.status_code == 400
    assert "legacy" in response.json()["plan"][0]
    assert history_rows() == rows
    assert not Subscription.objects.filter(external_id="sub-new").exists()


def test_subscription_put__legacy_plan_kept_by_its_subscriber__accepted(demo, api):
    current = api.get("subscriptions/sub-vandelay").json()
    body = {k: current[k] for k in SUBSCRIPTION}

    response = api.put("subscriptions/sub-vandelay", {**body, "current_period_end": "2031-01-01T00:00:00Z"})

    assert response.status_code == 200
    assert response.json()["plan"] == "business-2024"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer": "nobody"}, "customer"),
        ({"customer": "globex"}, "customer"),  # the subscription exists: it stays with acme
        ({"plan": "nope"}, "plan"),
        ({"plan": "extra-seats"}, "plan"),  # an add-on is no plan
        ({"status": "frozen"}, "status"),
        ({"trial_ends_at": "next tuesday"}, "trial_ends_at"),
        ({"trial_ends_at": "2030-02-30T00:00:00Z"}, "trial_ends_at"),
        ({"trial_ends_at": 1767225600}, "trial_ends_at"),
        ({"past_due_since": "0001-01-01T00:00:00+01:00"}, "past_due_since"),
        ({"status": "trialing", "trial_ends_at": None}, "trial_ends_at"),
        ({"addons": [{"addon": "nope", "quantity": 1}]}, "addons"),
        ({"addons": [{"addon": "extra-seats", "quantity": 0}]}, "addons"),
        ({"addons": [{"addon": "starter", "quantity": 1}]}, "addon"),
        ({"addons": [{"addon": "extra-seats"}, {"addon": "extra-seats"}]}, "addons"),
        ({"seats": 3}, "seats"),
    ],
)
def test_subscription_put__invalid__400_and_nothing_changes(demo, api, change, field):
    api.put("subscriptions/sub-acme-2", SUBSCRIPTION)
    rows = history_rows()

    response = api.put("subscriptions/sub-acme-2", {**SUBSCRIPTION, **change})

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert history_rows() == rows


def test_override__grant_201_with_id__then_delete_204(demo, api):
    response = api.post(
        "subscriptions/sub-acme/overrides",
        {"feature": "max-members", "value": 50, "valid_until": "2031-01-01T00:00:00Z"},
    )

    assert response.status_code == 201
    override = Override.objects.get(pk=response.json()["id"])
    assert (override.effect, override.value, override.feature.key) == ("grant", 50, "max-members")
    assert response.json()["customer"] == "acme"
    assert api.get(f"overrides/{override.pk}").json()["value"] == 50
    assert [o["id"] for o in api.get("subscriptions/sub-acme/overrides").json()["results"]] == [override.pk]

    assert api.delete(f"overrides/{override.pk}").status_code == 204
    assert api.get(f"overrides/{override.pk}").status_code == 404


def test_override__revoke__turns_the_feature_off(demo, api, reader):
    response = api.post("subscriptions/sub-acme/overrides", {"feature": "data-export", "effect": "revoke"})

    answer = reader.get("customers/acme/entitlements/data-export").json()
    assert response.status_code == 201
    assert (answer["enabled"], answer["source"]) == (False, f"override:{response.json()['id']}")


@pytest.mark.parametrize(
    "body",
    [
        {"feature": "max-members", "value": "lots"},
        {"feature": "nope", "value": True},
        {"feature": "data-export", "effect": "revoke", "value": True},
        {
            "feature": "4k-streaming",
            "value": True,
            "valid_from": "2030-01-02T00:00:00Z",
            "valid_until": "2030-01-01T00:00:00Z",
        },
        {"feature": "4k-streaming", "value": True, "valid_from": "yesterday"},
        {"feature": "4k-streaming", "effect": "maybe"},
        {"value": True},
    ],
    ids=[
        "value-not-of-the-kind",
        "unknown-feature",
        "revoke-with-value",
        "window-backwards",
        "bad-date",
        "bad-effect",
        "no-feature",
    ],
)
def test_override__invalid__400_and_nothing_changes(demo, api, body):
    rows = history_rows()

    response = api.post("subscriptions/sub-acme/overrides", body)

    assert response.status_code == 400, response.content
    assert history_rows() == rows


def test_override__overlapping_the_event_override__400(demo, api):
    response = api.post("subscriptions/sub-streamfan/overrides", {"feature": "4k-streaming", "value": True})

    assert response.status_code == 400
    assert "overlaps" in response.json()["valid_from"][0]


def test_override__on_unknown_subscription_404__unknown_override_404(demo, api):
    assert (
        api.post("subscriptions/nope/overrides", {"feature": "4k-streaming", "value": True}).status_code
        == 404
    )
    assert api.delete("overrides/999999").status_code == 404
    assert api.get(f"overrides/{2**70}").status_code == 404


def test_override__support_may_grant_4k_but_not_max_members(demo, api_for):
    from django.contrib.auth.models import User

    support = api_for(User.objects.get(username="support"), "write")

    granted = support.post(
        "subscriptions/sub-cinephile/overrides", {"feature": "4k-streaming", "effect": "revoke"}
    )
    refused = support.post("subscriptions/sub-cinephile/overrides", {"feature": "max-members", "value": 50})

    assert granted.status_code == 201
    assert refused.status_code == 403
