"""Hostile or careless requests: dates at the calendar's end, numbers beyond 64 bits,
half-empty objects in a PATCH, guessed keys, odd paths. Each is refused with a clear 4xx,
and rows stored before these rules (by the admin or an import) can still be read and mended."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from api import keys
from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db

FAR = "9999-12-31T23:59:59.999999Z"
BIG = 18446744073709551616  # 2**64


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "subscriptions/sub-acme", {"customer": "acme", "plan": "business", "trial_ends_at": FAR}),
        (
            "PUT",
            "subscriptions/sub-acme",
            {"customer": "acme", "plan": "business", "current_period_end": FAR},
        ),
        ("PATCH", "subscriptions/sub-acme", {"status": "past_due", "past_due_since": FAR}),
        ("PATCH", "subscriptions/sub-acme", {"past_due_since": "9000-01-01T00:00:00Z"}),
        (
            "POST",
            "subscriptions/sub-acme/overrides",
            {"feature": "4k-streaming", "value": True, "valid_until": FAR},
        ),
        (
            "POST",
            "subscriptions/sub-acme/overrides",
            {"feature": "4k-streaming", "value": True, "valid_from": FAR},
        ),
    ],
)
def test_write__date_in_year_9999__400_naming_the_field_and_checks_still_answer(
    demo, api, method, path, body
):
    rows = history_rows()

    response = api.request(method, path, body)

    assert response.status_code == 400
    field = next(name for name in body if name not in ("customer", "plan", "feature", "value", "status"))
    assert "before 9000-01-01" in response.json()[field][0]
    assert history_rows() == rows
    assert api.get("customers/acme/entitlements").status_code == 200


def test_scheduled_change__effective_in_year_9999__400(demo, api):
    response = api.post(
        "scheduled-changes",
        {"effective_at": FAR, "request": {"method": "PATCH", "path": "/api/v1/customers/acme", "body": {}}},
    )

    assert response.status_code == 400
    assert "before 9000-01-01" in response.json()["effective_at"][0]


def test_write__date_just_before_the_bound__accepted(demo, api):
    response = api.patch("subscriptions/sub-acme", {"current_period_end": "8999-12-31T23:59:59Z"})

    assert response.status_code == 200
    assert api.get("customers/acme/entitlements").status_code == 200


def test_override_stored_until_year_9999__entitlements_still_answer(demo, api, audited):
    """As the admin or an import could store it before the model refuses such dates."""
    from catalog.models import Feature
    from subscriptions.models import Override, Subscription

    Override.objects.create(
        subscription=Subscription.objects.get(external_id="sub-acme"),
        feature=Feature.objects.get(key="4k-streaming"),
        effect="grant",
        value=True,
        valid_until=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )

    response = api.get("customers/acme/entitlements")

    assert response.status_code == 200
    assert response.json()["entitlements"]["4k-streaming"]["enabled"] is True
    assert response.json()["entitlements"]["4k-streaming"]["valid_until"].startswith("9999-12-31T23:59:59")


# --- numbers beyond 64 bits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "raw", "where"),
    [
        ("PATCH", "customers/acme", '{"traits": {"n": 18446744073709551616}}', "traits.n"),
        ("PUT", "customers/acme", '{"name": "Acme", "traits": {"n": -9223372036854775809}}', "traits.n"),
        ("PATCH", "customers/acme", '{"traits": {"list": [1, 1e300]}}', "traits.list[1]"),
        (
            "PUT",
            "segments/huge",
            '{"name": "Huge", "rules": [{"conditions": [{"attribute": "traits.n", "op": "eq", '
            '"value": 18446744073709551616}]}]}',
            "rules[0].conditions[0].value",
        ),
        (
            "POST",
            "subscriptions/sub-acme/overrides",
            '{"feature": "max-members", "value": 18446744073709551616}',
            "value",
        ),
        ("PUT", "items/business/entitlements/max-members", '{"value": 9223372036854775808}', "value"),
    ],
)
def test_write__number_outside_signed_64_bits__400_naming_where_and_reads_still_answer(
    demo, api, method, path, raw, where
):
    rows = history_rows()

    response = api.request(method, path, raw=raw)

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert where in response.json()["detail"]
    assert history_rows() == rows
    assert api.get("customers/acme").status_code == 200
    assert api.get("customers").status_code == 200
    assert api.get("segments").status_code == 200


def test_write__largest_signed_64_bit_number__stored_and_read_back(demo, api):
    response = api.patch("customers/acme", {"traits": {"n": 2**63 - 1, "m": -(2**63)}})

    assert response.status_code == 200
    assert api.get("customers/acme").json()["traits"] == {"n": 2**63 - 1, "m": -(2**63)}


def test_rows_stored_with_numbers_beyond_64_bits__read_and_mended_through_the_api(demo, api, audited):
    """As the admin's JSON fields or an import could store them."""
    from segments.models import Condition, Segment
    from subscriptions.models import Customer

    customer = Customer.objects.get(external_id="acme")
    customer.traits = {"n": BIG}
    customer.save()
    segment = Segment.objects.create(key="huge", name="Huge")
    Condition.objects.create(segment=segment, rule=1, attribute="traits.n", op="eq", value=BIG)

    assert json.loads(api.get("customers/acme").content)["traits"] == {"n": BIG}
    assert api.get("customers").status_code == 200
    assert api.get("segments").status_code == 200
    assert json.loads(api.get("segments/huge").content)["rules"][0]["conditions"][0]["value"] == BIG
    assert api.get("customers/acme/entitlements").status_code == 200

    mended = api.put(
        "segments/huge",
        {"name": "Huge", "rules": [{"conditions": [{"attribute": "traits.n", "op": "eq", "value": 1}]}]},
    )
    assert mended.status_code == 200
    assert mended.json()["rules"][0]["conditions"][0]["value"] == 1
    assert api.patch("customers/acme", {"traits": {"n": 1}}).json()["traits"] == {"n": 1}


# --- half-empty objects in a PATCH -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        ("segments/beta", {"rules": [{}]}, '"conditions":["This field is required."]'),
        ("segments/beta", {"rules": [{"conditions": [{}]}]}, None),
        ("segments/beta", {"rules": [{"conditions": [{"attribute": "country", "op": "eq"}]}]}, None),
        ("subscriptions/sub-acme", {"addons": [{}]}, '"addon":["This field is required."]'),
    ],
)
def test_patch__nested_object_missing_its_fields__400_not_500(demo, api, path, body, errors):
    rows = history_rows()

    response = api.patch(path, body)

    assert response.status_code == 400
    key = next(iter(body))
    assert key in response.json()
    if errors is not None:
        assert errors in response.content.decode()
    assert history_rows() == rows


def test_patch__addon_without_quantity__takes_the_default_one(demo, api):
    response = api.patch("subscriptions/sub-acme", {"addons": [{"addon": "extra-seats"}]})

    assert response.status_code == 200
    assert response.json()["addons"] == [{"addon": "extra-seats", "quantity": 1}]


JUNK = [
    None,
    0,
    1.5,
    True,
    "x",
    "\x00",
    [],
    {},
    [None],
    [[]],
    ["\x00"],
    {"\x00": 1},
    [{"conditions": None}],
    [{"conditions": "x"}],
    [{"conditions": [None]}],
    [{"conditions": [[]]}],
    [{"conditions": [{"attribute": None}]}],
    [{"conditions": [{"attribute": "country", "op": "in", "value": []}]}],
    [{"conditions": [{"attribute": "country", "op": "nope", "value": "DE"}]}],
    [{"conditions": [{"attribute": "country\x00", "op": "eq", "value": "DE"}]}],
    [{"conditions": [{"attribute": "country", "op": "eq", "value": "D\x00E"}]}],
    [{"conditions": [{"attribute": "country", "op": "eq", "value": {"a": [1, {"b": None}]}}]}],
    [{"conditions": [{"attribute": "traits.x", "op": "eq", "value": "DE", "extra": 1}]}],
]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("rules", JUNK, ids=range(len(JUNK)))
def test_segment_write__junk_rules__4xx_never_500(demo, api, method, rules):
    response = api.request(method, "segments/beta", {"name": "Beta", "rules": rules})

    assert response.status_code < 500
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("field", ["name", "description", "tags", "included", "excluded"])
@pytest.mark.parametrize("value", [None, 0, "\x00", ["\x00"], [1], {"a": 1}, "x" * 20_000])
def test_segment_write__junk_fields__4xx_never_500(demo, api, field, value):
    for method in ("PUT", "PATCH"):
        response = api.request(method, "segments/beta", {"name": "Beta", field: value})

        assert response.status_code < 500
        assert response["Content-Type"] == "application/json"


# --- guessed keys ----------------------------------------------------------------------------------


def test_wrong_keys__after_30_in_a_minute__429_with_retry_after_and_no_lookup(
    demo, reader, django_assert_num_queries
):
    answers = [
        reader.get("customers/acme/entitlements", key=f"guess{n:03d}.{'x' * 32}").status_code
        for n in range(40)
    ]

    assert answers[:30] == [401] * 30
    assert set(answers[30:]) == {429}
    assert 0 < int(reader.last["Retry-After"]) <= 60
    assert "wrong API keys" in reader.last.json()["detail"]
    with django_assert_num_queries(0):
        assert reader.get("customers/acme/entitlements", key=f"other123.{'x' * 32}").status_code == 429
    assert reader.get("customers/acme/entitlements", key="malformed").status_code == 429


def test_wrong_keys__from_one_client__others_and_valid_keys_in_use_unaffected(demo, reader):
    """A key this process already uses is never held back; a key it has not seen yet, from a
    client over the limit, waits like any guess (at most a minute)."""
    assert reader.get("customers/acme/entitlements").status_code == 200
    for n in range(40):
        reader.get("customers/acme/entitlements", key=f"guess{n:03d}.{'x' * 32}")

    assert reader.get("customers/acme/entitlements").status_code == 200
    assert (
        reader.get(
            "customers/acme/entitlements", key=f"guess999.{'x' * 32}", headers={"REMOTE_ADDR": "10.1.2.3"}
        ).status_code
        == 401
    )


def test_wrong_keys__many_unknown_prefixes__known_good_keys_stay_remembered(demo, reader):
    assert reader.get("customers/acme/entitlements").status_code == 200
    good = keys.split(reader.key)

    for n in range(keys.MAX_REMEMBERED + 10):
        keys.remember(f"bad{n:05d}", 1, None)

    assert keys.remembered(good) is not None
    assert keys.remembered(good)[1] is not None


# --- paths and schema -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/%00x",
        "/api/v1/customers/%0Ax",
        "/api/v1/features/%0A",
        "/api/v1/segments/a%0Ab",
        "/api/v1/subscriptions/%00",
        "/api/v1/%0A",
        "/api/v1/items/x%0D%0Ay/entitlements/z",
    ],
)
def test_path_with_control_characters__json_404(demo, api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_schema__list_limit_has_its_bounds(db, client):
    schema = client.get("/api/schema/?format=json").json()

    for path in ("/api/v1/customers", "/api/v1/subscriptions", "/api/v1/segments"):
        limit = next(p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
