"""`consume`, `usage` and the metered check answer (docs/usage.md): their shapes, the business
answers (`allowed: false`) and the refusals of bad input, each of which counts nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from subscriptions.models import Subscription
from usage.models import Consumption

pytestmark = pytest.mark.django_db

CONSUME = "customers/{}/entitlements/{}/consume"


def counted(customer: str = "northwind", feature: str = "api-calls") -> int:
    rows = Consumption.objects.filter(customer__external_id=customer, feature__key=feature)
    return rows.aggregate(total=Sum("quantity"))["total"] or 0


def consume(client, body, customer="northwind", feature="api-calls", **kwargs):
    return client.post(CONSUME.format(customer, feature), body, reason=None, **kwargs)


def test_consume__counts_and_answers_what_is_left(demo, reader):
    response = consume(reader, {"quantity": 40})

    assert response.status_code == 200
    body = response.json()
    resets_at = body.pop("resets_at")
    assert body == {
        "allowed": True,
        "customer": "northwind",
        "feature": "api-calls",
        "used": 40,
        "limit": 1000,
        "remaining": 960,
        "limit_type": "hard",
    }
    # api-calls follows the billing cycle: the period ends when the subscription's does.
    period_end = Subscription.objects.get(external_id="sub-northwind").current_period_end
    assert resets_at == period_end.isoformat().replace("+00:00", "Z")
    assert counted() == 40


def test_consume__the_quantity_defaults_to_one(demo, reader):
    assert consume(reader, {}).json()["used"] == 1


def test_check__a_metered_answer_carries_used_limit_remaining_and_resets_at(demo, reader):
    consume(reader, {"quantity": 250})

    answer = reader.get("customers/northwind/entitlements/api-calls").json()

    assert answer["kind"] == "metered"
    assert (answer["enabled"], answer["value"], answer["used"], answer["limit"], answer["remaining"]) == (
        True,
        1000,
        250,
        1000,
        750,
    )
    assert answer["resets_at"] == answer["valid_until"]
    every = reader.get("customers/northwind/entitlements").json()["entitlements"]
    assert every["api-calls"] == {k: v for k, v in answer.items() if k not in ("feature", "customer")}
    assert "used" not in every["additional-users"]


def test_hard_limit__the_last_units_then_refusal_and_the_check_turns_off(demo, reader):
    assert consume(reader, {"quantity": 999}).json()["allowed"] is True

    too_many = consume(reader, {"quantity": 2}).json()
    last = consume(reader, {"quantity": 1}).json()
    after = consume(reader, {"quantity": 1}).json()

    assert (too_many["allowed"], too_many["used"], too_many["remaining"]) == (False, 999, 1)
    assert (last["allowed"], last["used"], last["remaining"]) == (True, 1000, 0)
    assert (after["allowed"], after["used"]) == (False, 1000)
    assert counted() == 1000
    answer = reader.get("customers/northwind/entitlements/api-calls").json()
    assert (answer["enabled"], answer["used"], answer["remaining"]) == (False, 1000, 0)


def test_soft_limit__consumption_beyond_it_is_allowed_and_reported(demo, reader):
    consume(reader, {"quantity": 1_999_999}, customer="acme", feature="ai-tokens")

    beyond = consume(reader, {"quantity": 10}, customer="acme", feature="ai-tokens").json()

    assert (beyond["allowed"], beyond["used"], beyond["limit"], beyond["remaining"]) == (
        True,
        2_000_009,
        2_000_000,
        0,
    )
    assert beyond["limit_type"] == "soft"
    answer = reader.get("customers/acme/entitlements/ai-tokens").json()
    assert (answer["enabled"], answer["used"], answer["remaining"]) == (True, 2_000_009, 0)


def test_unlimited__always_allowed_and_counted(demo, reader):
    body = consume(reader, {"quantity": 2_000_000_000}, customer="globex", feature="ai-tokens").json()

    assert (body["allowed"], body["used"], body["limit"], body["remaining"]) == (
        True,
        2_000_000_000,
        None,
        None,
    )
    answer = reader.get("customers/globex/entitlements/ai-tokens").json()
    assert (answer["unlimited"], answer["limit"], answer["remaining"], answer["used"]) == (
        True,
        None,
        None,
        2_000_000_000,
    )


@pytest.mark.parametrize(
    ("customer", "why"),
    [
        ("acme", "its plan (business) has no api-calls"),
        ("prospect", "no subscription at all"),
        ("fabrikam", "a paused subscription"),
        ("oldco", "a canceled subscription"),
        ("tryhard", "a trial that has ended"),
    ],
)
def test_a_customer_without_the_feature_is_told_no_and_nothing_is_consumed(demo, reader, customer, why):
    response = consume(reader, {"quantity": 1}, customer=customer)

    assert response.status_code == 200, why
    body = response.json()
    assert (body["allowed"], body["used"], body["limit"], body["remaining"]) == (False, None, 0, 0), why
    assert counted(customer) == 0
    answer = reader.get(f"customers/{customer}/entitlements/api-calls").json()
    assert (answer["enabled"], answer["used"], answer["limit"], answer["remaining"]) == (False, None, 0, 0), (
        why
    )
    reported = report(reader, {"feature": "api-calls", "quantity": 3}, customer=customer)
    assert (reported.status_code, reported.json()["recorded"]) == (200, False), why
    assert counted(customer) == 0


def test_a_revoke_or_another_market_is_told_no_and_nothing_is_consumed(demo, api, reader):
    api.post("subscriptions/sub-northwind/overrides", {"feature": "api-calls", "effect": "revoke"})
    assert consume(reader, {"quantity": 1}).json()["allowed"] is False

    api.patch("features/api-calls", {"markets": ["US"]})
    assert consume(reader, {"quantity": 1}, customer="contoso").json()["allowed"] is False

    api.patch("features/api-calls", {"markets": [], "status": "archived"})
    assert consume(reader, {"quantity": 1}, customer="contoso").json()["allowed"] is False
    assert counted("northwind") == counted("contoso") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"quantity": 2**31}, "quantity"),
        ({"quantity": 2**64}, None),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": "10"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": [1]}, "quantity"),
        ({"quantity": 1, "idempotency_key": ""}, "idempotency_key"),
        ({"quantity": 1, "idempotency_key": "has space"}, "idempotency_key"),
        ({"quantity": 1, "idempotency_key": "nul\x00"}, "idempotency_key"),
        ({"quantity": 1, "idempotency_key": "k" * 129}, "idempotency_key"),
        ({"quantity": 1, "idempotency_key": "clé"}, "idempotency_key"),
        ({"quantity": 1, "idempotency_key": 42}, "idempotency_key"),
        ({"quantity": 1, "feature": "api-calls"}, "feature"),
    ],
)
def test_bad_input__400_and_nothing_consumed(demo, reader, body, field):
    response = consume(reader, body)

    assert response.status_code == 400, response.content
    if field is not None:
        assert field in response.json(), response.json()
    assert counted() == 0


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'{"quantity": 1', b"\x00", b'"1"'])
def test_a_body_that_is_not_a_json_object__400(demo, reader, raw):
    response = reader.request("POST", CONSUME.format("northwind", "api-calls"), raw=raw, reason=None)

    assert response.status_code == 400
    assert counted() == 0


@pytest.mark.parametrize(
    ("customer", "feature", "status", "detail"),
    [
        ("nobody", "api-calls", 404, "No customer nobody."),
        ("northwind", "no-such-feature", 404, "No feature no-such-feature."),
        ("nul%00id", "api-calls", 404, "No customer nul\x00id."),
        (
            "northwind",
            "additional-users",
            400,
            "additional-users is not metered: only metered features count usage.",
        ),
    ],
)
def test_unknown_customer_or_feature_or_one_not_metered(demo, reader, customer, feature, status, detail):
    response = consume(reader, {"quantity": 1}, customer=customer, feature=feature)

    assert response.status_code == status
    assert response.json()["detail"] == detail
    assert Consumption.objects.count() == 0


def test_without_a_key__401_and_nothing_consumed(demo, reader):
    assert consume(reader, {"quantity": 1}, key=None).status_code == 401
    assert consume(reader, {"quantity": 1}, key="nope.nope").status_code in (401, 403)
    assert counted() == 0


def test_a_write_key_may_consume_too_and_no_change_reason_is_asked(demo, api):
    assert consume(api, {"quantity": 3}).json()["used"] == 3


def test_idempotency_key__the_first_answer_again_and_nothing_more_consumed(demo, reader):
    first = consume(reader, {"quantity": 5, "idempotency_key": "req-8812"})
    consume(reader, {"quantity": 7})
    again = consume(reader, {"quantity": 5, "idempotency_key": "req-8812"})

    assert first.json() == again.json()
    assert again.json()["used"] == 5
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert counted() == 12


def test_idempotency_key__a_refusal_is_given_again_even_once_there_is_room(demo, api, reader):
    consume(reader, {"quantity": 1000})
    refused = consume(reader, {"quantity": 5, "idempotency_key": "late-job"}).json()
    api.patch("subscriptions/sub-northwind", {"plan": "standard"})

    again = consume(reader, {"quantity": 5, "idempotency_key": "late-job"}).json()

    assert refused["allowed"] is again["allowed"] is False
    assert consume(reader, {"quantity": 5, "idempotency_key": "new-job"}).json()["allowed"] is True


def test_idempotency_keys_belong_to_one_customer_and_feature(demo, reader):
    consume(reader, {"quantity": 5, "idempotency_key": "shared"})
    other = consume(reader, {"quantity": 5, "idempotency_key": "shared"}, customer="contoso").json()

    assert (other["allowed"], other["used"]) == (True, 5)
    assert counted("contoso") == 5


def test_plan_change_mid_period__the_usage_stays_against_the_new_limit(demo, api, reader):
    consume(reader, {"quantity": 900})

    api.patch("subscriptions/sub-northwind", {"plan": "standard"})
    upgraded = consume(reader, {"quantity": 200}).json()
    api.patch("subscriptions/sub-northwind", {"plan": "basic"})
    downgraded = consume(reader, {"quantity": 1}).json()

    assert (upgraded["allowed"], upgraded["used"], upgraded["limit"]) == (True, 1100, 10_000)
    assert (downgraded["allowed"], downgraded["used"], downgraded["limit"], downgraded["remaining"]) == (
        False,
        1100,
        1000,
        0,
    )
    answer = reader.get("customers/northwind/entitlements/api-calls").json()
    assert (answer["enabled"], answer["used"], answer["remaining"]) == (False, 1100, 0)


def test_an_add_on_counts_its_limit_per_unit_and_an_override_negotiates_one(demo, api, reader):
    api.put("items/api-pack", {"kind": "addon", "name": "API pack"})
    api.put("items/api-pack/entitlements/api-calls", {"value": 500})
    api.patch("subscriptions/sub-northwind", {"addons": [{"addon": "api-pack", "quantity": 3}]})

    assert reader.get("customers/northwind/entitlements/api-calls").json()["limit"] == 2500

    api.post(
        "subscriptions/sub-northwind/overrides", {"feature": "api-calls", "effect": "grant", "value": 50_000}
    )
    assert consume(reader, {"quantity": 40_000}).json()["limit"] == 50_000


# --- reported usage ---------------------------------------------------------------------------------


def report(client, body, customer="northwind"):
    return client.post(f"customers/{customer}/usage", body, reason=None)


def test_usage__counted_whatever_the_limit_202_with_the_running_total(demo, reader):
    consume(reader, {"quantity": 990})

    response = report(reader, {"feature": "api-calls", "quantity": 25, "idempotency_key": "batch-17"})

    assert response.status_code == 202
    body = response.json()
    assert (body["recorded"], body["used"], body["limit"], body["remaining"]) == (True, 1015, 1000, 0)
    assert (
        report(reader, {"feature": "api-calls", "quantity": 25, "idempotency_key": "batch-17"}).json() == body
    )
    assert counted() == 1015
    assert Consumption.objects.get(idempotency_key="batch-17").kind == "report"


def test_usage__a_timestamp_in_the_period_is_kept_a_future_or_closed_one_refused(demo, reader):
    now = timezone.now()
    happened = (now - timedelta(hours=1)).replace(microsecond=0)

    ok = report(reader, {"feature": "api-calls", "quantity": 2, "timestamp": happened.isoformat()})
    future = report(
        reader, {"feature": "api-calls", "quantity": 2, "timestamp": (now + timedelta(hours=1)).isoformat()}
    )
    closed = report(
        reader, {"feature": "api-calls", "quantity": 2, "timestamp": (now - timedelta(days=40)).isoformat()}
    )
    far = report(reader, {"feature": "api-calls", "quantity": 2, "timestamp": "9999-12-31T23:59:59Z"})
    junk = report(reader, {"feature": "api-calls", "quantity": 2, "timestamp": "yesterday"})

    assert ok.status_code == 202
    assert Consumption.objects.get().happened_at == happened
    assert [r.status_code for r in (future, closed, far, junk)] == [400, 400, 400, 400]
    assert closed.json()["code"] == "period_closed"
    assert counted() == 2


def test_usage__bad_input(demo, reader):
    assert report(reader, {"quantity": 1}).status_code == 400
    assert report(reader, {"feature": "api-calls", "quantity": 0}).status_code == 400
    assert report(reader, {"feature": "nope", "quantity": 1}).status_code == 404
    assert report(reader, {"feature": "max-members", "quantity": 1}, customer="acme").status_code == 400
    assert report(reader, {"feature": "api-calls", "quantity": 1}, customer="nobody").status_code == 404
    assert counted() == 0


# --- ETags --------------------------------------------------------------------------------------------


def test_etag__a_metered_answer_is_not_modified_until_something_is_consumed(demo, reader):
    first = reader.get("customers/northwind/entitlements/api-calls")
    etag = first["ETag"]

    assert (
        reader.get(
            "customers/northwind/entitlements/api-calls", headers={"HTTP_IF_NONE_MATCH": etag}
        ).status_code
        == 304
    )
    consume(reader, {"quantity": 1})
    after = reader.get("customers/northwind/entitlements/api-calls", headers={"HTTP_IF_NONE_MATCH": etag})

    assert after.status_code == 200
    assert after.json()["used"] == 1
    assert after["ETag"] != etag
    whole = reader.get("customers/northwind/entitlements")
    consume(reader, {"quantity": 1})
    assert (
        reader.get(
            "customers/northwind/entitlements", headers={"HTTP_IF_NONE_MATCH": whole["ETag"]}
        ).status_code
        == 200
    )
