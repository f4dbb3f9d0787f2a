"""API keys in the audit log: a key acts as its owner on the API, so making, editing, revoking
or expiring one is recorded with who, when, from where and why, from the admin, the shell
and the services alike; a write without a reason changes nothing. The log never holds the
key or its hash: it names a key by its prefix.
(The admin's journey in Chromium is tests/browser/test_api_keys_journey.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from api import services
from api.models import APIKey
from audit.models import AuditEntry
from tests.factories import SuperuserFactory, UserFactory
from toolkit.change_context import ChangeReasonRequired

REASON = "OPS-42: billing sync moves to the new cluster"


def key_entries() -> list[AuditEntry]:
    """The audit log's entries about API keys, oldest first."""
    return list(
        AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(APIKey))
        .select_related("user")
        .order_by("history_date", "id")
    )


def changes_of(entry: AuditEntry) -> dict[str, tuple]:
    return {change["field"]: (change["old"], change["new"]) for change in entry.changes}


def assert_no_secret_in(entry: AuditEntry, api_key: APIKey, raw_key: str | None = None) -> None:
    shown = f"{entry.object_id} {entry.object_repr} {entry.changes} {entry.reason}"
    assert api_key.hashed_key not in shown
    assert api_key.hashed_key.removeprefix("sha512$$") not in shown
    if raw_key is not None:
        assert raw_key.split(".")[1] not in shown


@pytest.fixture
def admin_user(db):
    return SuperuserFactory(username="admin-of-keys")


@pytest.fixture
def owner(db):
    return UserFactory(username="billing-bot")


@pytest.fixture
def key(owner):
    return services.api_key_create(
        name="billing", owner=owner, scope="read", actor=None, reason="Set up for the test", source="shell"
    )


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


# --- services -----------------------------------------------------------------------------


def test_create__with_reason__recorded_with_who_why_what_and_no_secret(admin_user, owner):
    expires = datetime(2027, 1, 31, 23, 0, tzinfo=UTC)

    api_key, raw_key = services.api_key_create(
        name="billing",
        owner=owner,
        scope="write",
        expires=expires,
        rate_limit=600,
        actor=admin_user,
        reason=REASON,
        source="admin",
    )

    [entry] = key_entries()
    assert (entry.user, entry.source, entry.reason, entry.action) == (admin_user, "admin", REASON, "+")
    assert entry.object_id == api_key.prefix
    assert entry.object_repr == f"billing ({api_key.prefix}…)"
    assert changes_of(entry) == {
        "name": (None, "billing"),
        "prefix": (None, api_key.prefix),
        "owner": (None, "billing-bot"),
        "scope": (None, "write"),
        "Expires": (None, expires.isoformat()),
        "rate limit": (None, 600),
    }
    assert_no_secret_in(entry, api_key, raw_key)


def test_create__without_reason__refused_and_no_key(owner):
    with pytest.raises(ChangeReasonRequired):
        services.api_key_create(
            name="billing", owner=owner, scope="read", actor=None, reason=" ", source="shell"
        )

    assert not APIKey.objects.exists()
    assert key_entries() == []


def test_create__by_staff_without_key_permissions__refused(owner):
    with pytest.raises(PermissionDenied):
        services.api_key_create(
            name="billing", owner=owner, scope="write", actor=UserFactory(), reason=REASON, source="admin"
        )

    assert not APIKey.objects.exists()
    assert key_entries() == []


def test_save__changed__recorded_old_to_new__unchanged__nothing_recorded(key, admin_user):
    api_key, _ = key
    api_key.scope, api_key.rate_limit = "write", 100

    services.api_key_save(api_key=api_key, actor=admin_user, reason=REASON, source="admin")
    services.api_key_save(api_key=api_key, actor=admin_user, reason="Saved again", source="admin")

    entry = key_entries()[-1]
    assert len(key_entries()) == 2  # creation, then the one change
    assert (entry.user, entry.reason, entry.action) == (admin_user, REASON, "~")
    assert changes_of(entry) == {"scope": ("read", "write"), "rate limit": (None, 100)}
    api_key.refresh_from_db()
    assert (api_key.scope, api_key.rate_limit) == ("write", 100)


def test_revoke__recorded_once__a_second_revoke_records_nothing(key, admin_user):
    api_key, raw_key = key

    services.api_key_revoke(api_key=api_key, actor=admin_user, reason="Leaked in a log", source="admin")
    services.api_key_revoke(api_key=api_key, actor=admin_user, reason="Leaked again", source="admin")

    entries = key_entries()
    assert len(entries) == 2
    assert (entries[1].user, entries[1].reason, entries[1].source) == (admin_user, "Leaked in a log", "admin")
    assert changes_of(entries[1]) == {"revoked": (False, True)}
    assert_no_secret_in(entries[1], api_key, raw_key)


def test_revoke__without_reason__refused_and_still_usable(key):
    api_key, _ = key

    with pytest.raises(ChangeReasonRequired):
        services.api_key_revoke(api_key=api_key, actor=None, reason="", source="shell")

    api_key.refresh_from_db()
    assert not api_key.revoked
    assert len(key_entries()) == 1


def test_expire__recorded_old_to_new__an_earlier_expiry_kept_and_nothing_recorded(key):
    api_key, _ = key
    at = datetime(2027, 1, 1, tzinfo=UTC)

    services.api_key_expire(api_key=api_key, at=at, actor=None, reason="Contract ends", source="task")
    services.api_key_expire(
        api_key=api_key, at=at + timedelta(days=1), actor=None, reason="Later", source="task"
    )

    entries = key_entries()
    assert len(entries) == 2
    assert (entries[1].user, entries[1].source, entries[1].reason) == (None, "task", "Contract ends")
    assert changes_of(entries[1]) == {"Expires": (None, at.isoformat())}


# --- the admin ----------------------------------------------------------------------------


def test_admin_add__without_reason__refused_with_the_error_and_no_key(admin_client, owner):
    response = admin_client.post(
        reverse("admin:api_apikey_add"),
        {"name": "billing", "owner": owner.pk, "scope": "read", "expiry_date_0": "", "expiry_date_1": ""},
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not APIKey.objects.exists()


def test_admin_add__with_reason__recorded_as_the_admin(admin_client, admin_user, owner):
    response = admin_client.post(
        reverse("admin:api_apikey_add"),
        {
            "name": "billing",
            "owner": owner.pk,
            "scope": "read",
            "expiry_date_0": "",
            "expiry_date_1": "",
            "change_reason": REASON,
        },
        follow=True,
    )

    raw_key = re.search(r"The key for billing is: (\S+) —", response.content.decode()).group(1)
    [entry] = key_entries()
    assert (entry.user, entry.source, entry.reason, entry.action) == (admin_user, "admin", REASON, "+")
    assert_no_secret_in(entry, APIKey.objects.get(), raw_key)


def test_admin_change__with_reason__recorded_old_to_new(admin_client, admin_user, key):
    api_key, _ = key

    response = admin_client.post(
        reverse("admin:api_apikey_change", args=[api_key.pk]),
        {
            "name": "billing-sync",
            "scope": "read",
            "expiry_date_0": "",
            "expiry_date_1": "",
            "rate_limit": "",
            "change_reason": REASON,
        },
    )

    assert response.status_code == 302
    entry = key_entries()[-1]
    assert (entry.user, entry.reason) == (admin_user, REASON)
    assert changes_of(entry) == {"name": ("billing", "billing-sync")}


@pytest.mark.parametrize(("url_path", "field"), [("revoke", "revoked"), ("expire", "expiry_date")])
def test_admin_detail_action__posted_without_reason__nothing_changes_and_the_error_shows(
    admin_client, key, url_path, field
):
    api_key, _ = key
    url = reverse(f"admin:api_apikey_{url_path}_detail", args=[api_key.pk])
    assert 'name="change_reason"' in admin_client.get(url).content.decode()

    response = admin_client.post(url, {"change_reason": "  "})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    api_key.refresh_from_db()
    assert not getattr(api_key, field)
    assert len(key_entries()) == 1


@pytest.mark.parametrize(("url_path", "field"), [("revoke", "revoked"), ("expire", "expiry_date")])
def test_admin_detail_action__with_reason__done_and_recorded(admin_client, admin_user, key, url_path, field):
    api_key, _ = key

    response = admin_client.post(
        reverse(f"admin:api_apikey_{url_path}_detail", args=[api_key.pk]), {"change_reason": REASON}
    )

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert getattr(api_key, field)
    entry = key_entries()[-1]
    assert (entry.user, entry.source, entry.reason, entry.action) == (admin_user, "admin", REASON, "~")


@pytest.mark.parametrize(
    ("action", "field"), [("revoke_selected", "revoked"), ("expire_selected", "expiry_date")]
)
def test_admin_bulk_action__asks_why_first__then_recorded(admin_client, admin_user, key, action, field):
    api_key, _ = key
    changelist = reverse("admin:api_apikey_changelist")

    asked = admin_client.post(changelist, {"action": action, "_selected_action": [api_key.pk]})

    assert 'name="change_reason"' in asked.content.decode()
    api_key.refresh_from_db()
    assert not getattr(api_key, field)

    admin_client.post(
        changelist,
        {"action": action, "_selected_action": [api_key.pk], "apply_reason": "1", "change_reason": REASON},
    )

    api_key.refresh_from_db()
    assert getattr(api_key, field)
    entry = key_entries()[-1]
    assert (entry.user, entry.reason, entry.action) == (admin_user, REASON, "~")


def test_audit_log__a_key_entry_links_to_the_key_page(admin_client, key):
    api_key, _ = key

    log = admin_client.get(reverse("admin:audit_auditentry_changelist")).content.decode()
    link = reverse("admin:api_apikey_change", args=[api_key.prefix])

    assert link in log
    assert api_key.hashed_key.removeprefix("sha512$$") not in log
    key_page = admin_client.get(link)
    assert key_page.status_code == 200
    assert api_key.prefix in key_page.content.decode()


# --- manage.py create_api_key ----------------------------------------------------------------


def test_create_api_key_command__reason__recorded_from_the_shell__key_last(owner):
    out = StringIO()

    call_command(
        "create_api_key",
        "billing",
        "--user",
        "billing-bot",
        "--scope",
        "read",
        "--reason",
        REASON,
        stdout=out,
    )

    raw_key = out.getvalue().strip().splitlines()[-1]
    api_key = APIKey.objects.get()
    assert raw_key.split(".")[0] == api_key.prefix
    [entry] = key_entries()
    assert (entry.user, entry.source, entry.reason) == (None, "shell", REASON)
    assert changes_of(entry)["owner"] == (None, "billing-bot")


def test_create_api_key_command__no_reason__the_recorded_reason_names_the_key_and_user(owner):
    call_command("create_api_key", "billing", "--user", "billing-bot", "--scope", "read", stdout=StringIO())

    [entry] = key_entries()
    assert entry.reason == "API key billing for billing-bot, created with manage.py create_api_key"
