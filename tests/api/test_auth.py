"""API keys: stored hashed, shown once, scoped, owned, revocable and
expirable with immediate effect, throttled per key; `manage.py create_api_key`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from api import services
from api.models import APIKey
from tests.api.conftest import Api
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_no_key__401_with_www_authenticate(demo, reader):
    response = reader.get("customers/acme/entitlements", key=None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Api-Key")
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }


@pytest.mark.parametrize(
    "key",
    ["nonsense", "abcdefgh.wrongsecret", "", "Bearer x", "a" * 300],
    ids=["malformed", "unknown", "empty", "other-scheme", "long"],
)
def test_bad_key__401(demo, reader, key):
    response = reader.get("customers/acme/entitlements", key=key)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Api-Key")
    assert response.json()["code"] in ("authentication_failed", "not_authenticated")


def test_right_prefix_wrong_secret__401_even_when_the_key_is_remembered(demo, reader):
    assert reader.get("customers/acme/entitlements").status_code == 200
    forged = reader.key.split(".")[0] + ".not-the-secret"

    assert reader.get("customers/acme/entitlements", key=forged).status_code == 401


def test_only_a_hash_is_stored(demo, reader):
    api_key = APIKey.objects.get(prefix=reader.key.split(".")[0])

    assert reader.key.split(".")[1] not in api_key.hashed_key
    assert api_key.hashed_key.startswith("sha512$$")


def test_revoked_key__refused_at_its_next_request_in_a_process_that_remembers_it(demo, reader, capture):
    assert reader.get("customers/acme/entitlements").status_code == 200

    with capture(execute=True):
        services.api_key_revoke(
            api_key=APIKey.objects.get(prefix=reader.key.split(".")[0]),
            actor=None,
            reason="Leaked in a log",
            source="shell",
        )

    assert reader.get("customers/acme/entitlements").status_code == 401


def test_expired_key__refused(demo, reader, capture):
    assert reader.get("customers/acme/entitlements").status_code == 200

    with capture(execute=True):
        services.api_key_expire(
            api_key=APIKey.objects.get(prefix=reader.key.split(".")[0]),
            actor=None,
            reason="The application is retired",
            source="shell",
        )

    assert reader.get("customers/acme/entitlements").status_code == 401


def test_key_expiring_later__accepted_until_then(demo, api_for, monkeypatch):
    client = api_for(UserFactory(), "read", expires=timezone.now() + timedelta(hours=1))
    assert client.get("customers/acme/entitlements").status_code == 200

    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr("api.keys.now", lambda: later)

    assert client.get("customers/acme/entitlements").status_code == 401


def test_owner_deactivated__their_keys_are_refused(demo, api_for, capture):
    owner = UserFactory()
    client = api_for(owner, "read")
    assert client.get("customers/acme/entitlements").status_code == 200

    with capture(execute=True):
        owner.is_active = False
        owner.save()

    assert client.get("customers/acme/entitlements").status_code == 401


def test_read_key__may_read_everything(demo, reader):
    for path in ["features", "items", "customers", "subscriptions", "segments", "features/max-members"]:
        assert reader.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "customers/acme", {"name": "Acme"}),
        ("PATCH", "features/max-members", {"name": "Seats"}),
        ("POST", "subscriptions/sub-acme/overrides", {"feature": "4k-streaming", "value": True}),
        ("DELETE", "items/business/entitlements/data-export", None),
    ],
)
def test_read_key__writing__403_insufficient_scope_and_nothing_changes(demo, reader, method, path, body):
    from tests.audit_trail import history_rows

    before = history_rows()

    response = reader.request(method, path, body)

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert history_rows() == before


def test_write_key_of_a_user_without_permission__403_and_nothing_changes(demo, api_for):
    from django.contrib.auth.models import User

    from tests.audit_trail import history_rows

    support = api_for(User.objects.get(username="support"), "write")
    before = history_rows()

    response = support.put("items/business/entitlements/max-members", {"value": 50})

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert history_rows() == before


@pytest.mark.parametrize("listener", ["live_revisions", "listener_down"])
def test_throttle__per_key__429_with_retry_after(demo, api_for, monkeypatch, request, listener):
    request.getfixturevalue(listener)  # warm checks served by checks.fast, or all by DRF
    moment = timezone.now().replace(second=30)  # all four requests in one throttle window
    monkeypatch.setattr("api.keys.now", lambda: moment)
    limited = api_for(UserFactory(), "read", rate_limit=3)
    other = api_for(UserFactory(), "read", rate_limit=3)

    statuses = [limited.get("customers/acme/entitlements").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert limited.last.json()["code"] == "throttled"
    assert limited.last["Retry-After"] == "30"
    assert other.get("customers/acme/entitlements").status_code == 200


def test_create_api_key__prints_a_working_key_as_the_last_line(demo, capture):
    out = StringIO()

    call_command("create_api_key", "billing-sync", "--user", "sales", "--scope", "write", stdout=out)

    key = out.getvalue().strip().splitlines()[-1]
    client = Api(Client(), key, capture)
    assert client.get("customers/acme").status_code == 200
    assert client.put("customers/acme", {"name": "Acme Corp", "country": "US"}).status_code == 200
    api_key = APIKey.objects.get(name="billing-sync")
    assert (api_key.owner.username, api_key.scope, api_key.prefix) == ("sales", "write", key.split(".")[0])


@pytest.mark.parametrize(
    "args",
    [["x", "--user", "nobody", "--scope", "read"], ["x", "--user", "sales", "--scope", "admin"]],
)
def test_create_api_key__bad_arguments__refused(demo, args):
    with pytest.raises((CommandError, SystemExit)):
        call_command("create_api_key", *args, stdout=StringIO(), stderr=StringIO())


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks
