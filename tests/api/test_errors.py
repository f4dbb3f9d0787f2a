"""Bad requests answered clearly: the reason header, invalid JSON, oversized
bodies, wrong types, unknown fields and paths — each a 4xx that changes nothing."""

from __future__ import annotations

import pytest

from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db

WRITES = [
    ("PUT", "customers/acme", {"name": "Acme"}),
    ("PATCH", "customers/acme", {"name": "Acme"}),
    ("PUT", "features/seats", {"name": "Seats", "kind": "switch"}),
    ("PUT", "features/max-members/rules", []),
    ("PUT", "items/gold", {"kind": "plan", "name": "Gold"}),
    ("POST", "items/business/supersede", {"new_key": "business-2027"}),
    ("PUT", "items/business/entitlements/max-members", {"value": 50}),
    ("DELETE", "items/business/entitlements/data-export", None),
    ("PUT", "subscriptions/sub-acme", {"customer": "acme", "plan": "starter"}),
    ("POST", "subscriptions/sub-acme/overrides", {"feature": "4k-streaming", "value": True}),
    ("PUT", "segments/europe", {"name": "Europe"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("reason", [None, "", "   \t "], ids=["missing", "empty", "blank"])
def test_write_without_reason__400_change_reason_required__nothing_changes(
    demo, api, method, path, body, reason
):
    rows = history_rows()

    response = api.request(method, path, body, reason=reason)

    assert response.status_code == 400
    assert response.json()["code"] == "change_reason_required"
    assert response.json()["detail"]
    assert history_rows() == rows


def test_reason_in_utf8__recorded_as_sent(demo, api):
    from audit.models import AuditEntry

    reason = "Kündigung laut Ticket №42 — https://tickets.example/42"
    response = api.patch("customers/acme", {"name": "Acme GmbH"}, reason=reason.encode().decode("latin-1"))

    assert response.status_code == 200
    assert AuditEntry.objects.latest("id").reason == reason


@pytest.mark.parametrize("raw", ['{"name": "Acme"', "{'name': 'Acme'}", "nul", '{"name": NaN}', "\xff\xfe"])
def test_invalid_json__400_parse_error(demo, api, raw):
    rows = history_rows()

    response = api.put("customers/acme", raw=raw)

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert history_rows() == rows


def test_two_megabyte_body__413_and_nothing_changes(demo, api):
    rows = history_rows()
    body = '{"name": "Acme", "traits": {"blob": "' + "x" * (2 * 1024 * 1024) + '"}}'

    response = api.put("customers/acme", raw=body)

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert history_rows() == rows


def test_body_that_is_not_an_object__400(demo, api):
    for body in ([{"name": "Acme"}], "Acme", 5, None):
        response = api.put("customers/acme", raw=__import__("json").dumps(body))
        assert response.status_code == 400, body


def test_empty_body__400_missing_fields(demo, api):
    response = api.put("customers/acme", raw="")

    assert response.status_code == 400
    assert response.json() == {"name": ["This field is required."]}


def test_not_json__415(demo, api):
    response = api.client.put(
        "/api/v1/customers/acme",
        data="name=Acme",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Api-Key {api.key}",
        HTTP_X_CHANGE_REASON="x",
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here",
        "/api/v1/customers/acme/entitlements/max-members/extra",
        "/api/v2/features",
        "/api/",
    ],
)
def test_unknown_path__json_404(demo, api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "No such endpoint.", "code": "not_found"}


def test_method_not_allowed__405_json(demo, api):
    response = api.request("DELETE", "customers/acme")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_paths_have_no_trailing_slash(demo, api):
    assert api.get("customers/acme").status_code == 200
    assert api.get("customers/acme/").status_code == 404


def test_invalid_cursor__404(demo, api):
    response = api.get("customers?cursor=not-a-cursor")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_cache_unreachable__503_service_unavailable_never_500(demo, reader, monkeypatch):
    import redis

    def down(self):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("checks.store.Batch.execute", down)

    response = reader.get("customers/acme/entitlements")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
