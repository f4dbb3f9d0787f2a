"""The entitlement checks: the answer's exact shape, 404s, ETag / 304, and that a
cached answer follows every change and never outlives its valid_until."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from checks import snapshots
from subscriptions.models import Override, Subscription

pytestmark = pytest.mark.django_db

ENTRY_KEYS = ["kind", "enabled", "value", "unlimited", "source", "valid_until", "fallback"]
METERED_KEYS = ["used", "limit", "remaining", "resets_at", "limit_type"]


def test_entitlements__acme__the_shape_of_design_6(demo, reader):
    response = reader.get("customers/acme/entitlements")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["customer", "evaluated_at", "valid_until", "entitlements"]
    assert body["customer"] == "acme"
    assert body["evaluated_at"].endswith("Z")
    # Nothing ends by itself but the usage periods of the metered features.
    metered = [entry for entry in body["entitlements"].values() if entry["kind"] == "metered"]
    assert body["valid_until"] == min(entry["resets_at"] for entry in metered)
    assert body["entitlements"]["max-members"] == {
        "kind": "quantity",
        "enabled": True,
        "value": 35,
        "unlimited": False,
        "source": "plan:business",
        "valid_until": None,
        "fallback": "deny",
    }
    assert body["entitlements"]["4k-streaming"] == {
        "kind": "switch",
        "enabled": False,
        "value": False,
        "unlimited": False,
        "source": "default",
        "valid_until": None,
        "fallback": "deny",
    }
    assert all(
        list(entry) == ENTRY_KEYS for entry in body["entitlements"].values() if entry["kind"] != "metered"
    )
    assert all(list(entry) == ENTRY_KEYS + METERED_KEYS for entry in metered)


def test_entitlements__every_active_feature_appears_and_archived_ones_do_not(demo, api, reader):
    api.patch("features/live-sports", {"status": "archived"})

    entitlements = reader.get("customers/acme/entitlements").json()["entitlements"]

    assert set(entitlements) == {
        "max-members",
        "max-simultaneous-streams",
        "4k-streaming",
        "additional-users",
        "api-calls-per-day",
        "support-level",
        "change-request",
        "change-request-version",
        "data-export",
        "api-calls",
        "ai-tokens",
    }


def test_one_feature__adds_feature_and_customer_to_the_entry(demo, reader):
    response = reader.get("customers/globex/entitlements/max-members")

    assert response.status_code == 200
    assert response.json() == {
        "feature": "max-members",
        "customer": "globex",
        "kind": "quantity",
        "enabled": True,
        "value": None,
        "unlimited": True,
        "source": "plan:enterprise",
        "valid_until": None,
        "fallback": "deny",
    }


def test_one_feature__archived__answers_off_with_source_archived(demo, api, reader):
    api.patch("features/data-export", {"status": "archived"})

    answer = reader.get("customers/acme/entitlements/data-export").json()

    assert (answer["enabled"], answer["value"], answer["source"]) == (False, False, "archived")


@pytest.mark.parametrize(
    "path",
    [
        "customers/nobody/entitlements",
        "customers/nobody/entitlements/max-members",
        "customers/acme/entitlements/no-such-feature",
    ],
)
def test_unknown_customer_or_feature__404_with_detail_and_code(demo, reader, path):
    response = reader.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"]


def test_unknown_customer__then_created__is_answered(demo, api, reader):
    assert reader.get("customers/newco/entitlements").status_code == 404

    api.put("customers/newco", {"name": "New Co", "country": "DE"})

    assert reader.get("customers/newco/entitlements").status_code == 200


def test_etag__if_none_match_answers_304_without_a_body(demo, reader):
    first = reader.get("customers/acme/entitlements")
    etag = first["ETag"]

    again = reader.get("customers/acme/entitlements", headers={"HTTP_IF_NONE_MATCH": etag})

    assert etag.startswith('W/"')
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag


def test_etag__one_feature_has_its_own(demo, reader):
    first = reader.get("customers/acme/entitlements/max-members")

    again = reader.get(
        "customers/acme/entitlements/max-members", headers={"HTTP_IF_NONE_MATCH": first["ETag"]}
    )
    other = reader.get("customers/acme/entitlements", headers={"HTTP_IF_NONE_MATCH": first["ETag"]})

    assert again.status_code == 304
    assert other.status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        # a plan's entitlement (catalog revision), a customer's subscription (its revision)
        lambda api: api.put("items/business/entitlements/max-members", {"value": 50}),
        lambda api: api.patch(
            "subscriptions/sub-acme", {"addons": [{"addon": "extra-seats", "quantity": 3}]}
        ),
    ],
    ids=["catalog-change", "customer-change"],
)
def test_etag__after_a_change__200_with_the_new_answer(demo, api, reader, change):
    etag = reader.get("customers/acme/entitlements")["ETag"]

    assert change(api).status_code == 200
    response = reader.get("customers/acme/entitlements", headers={"HTTP_IF_NONE_MATCH": etag})

    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response.json()["entitlements"]["max-members"]["value"] in (60, 40)


def test_etag__garbage_or_foreign_tags__200(demo, reader):
    for header in ['"nonsense"', "*", 'W/"c1.1.2.-"', "", 'W/"c1.x.y.z", W/"f1.1.1.1"']:
        response = reader.get("customers/acme/entitlements", headers={"HTTP_IF_NONE_MATCH": header})
        assert response.status_code == 200, header


def test_cached_answer__follows_an_override_granted_through_the_api(demo, api, reader):
    assert reader.get("customers/cinephile/entitlements/max-members").json()["enabled"] is False

    created = api.post("subscriptions/sub-cinephile/overrides", {"feature": "max-members", "value": 10})
    answer = reader.get("customers/cinephile/entitlements/max-members").json()

    assert created.status_code == 201
    assert (answer["value"], answer["source"]) == (10, f"override:{created.json()['id']}")

    api.delete(f"overrides/{created.json()['id']}")

    assert reader.get("customers/cinephile/entitlements/max-members").json()["source"] == "default"


def test_cached_answer__follows_a_segment_list_change(demo, api, reader):
    before = reader.get("customers/northwind/entitlements/change-request-version").json()

    api.patch("segments/beta", {"included": ["contoso", "acme", "northwind"]})
    after = reader.get("customers/northwind/entitlements/change-request-version").json()

    assert (before["value"], before["source"]) == ("v1", "plan:basic")
    assert (after["value"], after["source"]) == ("v2", "segment:beta")


def test_cached_answer__never_outlives_valid_until(demo, reader, monkeypatch):
    override = Override.objects.get(subscription__customer__external_id="streamfan")
    during = reader.get("customers/streamfan/entitlements")
    assert during.json()["entitlements"]["4k-streaming"]["enabled"] is True
    assert during.json()["valid_until"] == override.valid_until.isoformat().replace("+00:00", "Z")

    # The same process, same revisions, an instant after the override ends.
    later = override.valid_until + timedelta(microseconds=1)
    monkeypatch.setattr("checks.views.timezone.now", lambda: later)
    after = reader.get("customers/streamfan/entitlements", headers={"HTTP_IF_NONE_MATCH": during["ETag"]})

    assert after.status_code == 200  # the ETag named valid_until: it no longer holds
    assert after.json()["entitlements"]["4k-streaming"]["enabled"] is False
    assert after.json()["entitlements"]["4k-streaming"]["source"] == "default"


def test_cached_answer__trial_end_in_the_stored_snapshot_is_a_miss(demo, reader, monkeypatch):
    trial_end = Subscription.objects.get(customer__external_id="initech").trial_ends_at
    assert reader.get("customers/initech/entitlements/max-members").json()["value"] == 5
    snapshots.forget_all()  # another process: only the shared (Redis) snapshot is there

    monkeypatch.setattr("checks.views.timezone.now", lambda: trial_end)
    answer = reader.get("customers/initech/entitlements/max-members").json()

    assert (answer["enabled"], answer["source"]) == (False, "default")


def test_times__iso_8601_utc(demo, reader):
    body = reader.get("customers/streamfan/entitlements").json()

    assert body["valid_until"].endswith("Z")
    assert timezone.datetime.fromisoformat(body["valid_until"].replace("Z", "+00:00")) > timezone.now()
