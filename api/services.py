"""Writes to API keys: create (the key is returned once, only its hash is kept), edit,
revoke, expire. A key acts as its owner on the API, so every write is recorded in the audit
log with who made it, when, from where and why (`audit.records`), and each moves the keys
revision so every web process stops accepting a changed key on its next request.

The audit log names a key by its prefix, never by its primary key: the primary key of
drf-api-key's model holds the key's hash, and neither the key nor its hash goes into the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from api import keys
from api.models import APIKey
from audit.records import record_change
from toolkit.change_context import change_context

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# What the audit log shows of a key, old → new (never the key or its hash).
RECORDED_FIELDS = ("name", "owner", "scope", "expiry_date", "rate_limit", "revoked")


def _require(actor: User | None, perm: str) -> None:
    """A person may manage keys only with the admin's key permissions; `None` is the system
    (a management command run on the server)."""
    if actor is not None and not actor.has_perm(f"api.{perm}_apikey"):
        raise PermissionDenied("You may not manage API keys.")


def _shown(api_key: APIKey, field: str) -> Any:
    """A field as the audit log stores it: the owner by username, times in ISO 8601."""
    value = getattr(api_key, field)
    if field == "owner":
        return value.get_username() if value is not None else None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _label(field: str) -> str:
    return str(APIKey._meta.get_field(field).verbose_name)


def _record(api_key: APIKey, *, action: str, changes: list[dict[str, Any]]) -> None:
    # Named by its prefix: the primary key holds the key's hash.
    record_change(api_key, action=action, changes=changes, object_id=api_key.prefix)


def _record_edit(before: APIKey, after: APIKey) -> bool:
    """Record what changed between two states of a key ("~", old → new); nothing if nothing did."""
    changes = [
        {"field": _label(field), "old": _shown(before, field), "new": _shown(after, field)}
        for field in RECORDED_FIELDS
        if _shown(before, field) != _shown(after, field)
    ]
    if changes:
        _record(after, action="~", changes=changes)
    return bool(changes)


@transaction.atomic
def api_key_create(
    *,
    name: str,
    owner: User,
    scope: str,
    expires: datetime | None = None,
    rate_limit: int | None = None,
    actor: User | None,
    reason: str,
    source: str,
) -> tuple[APIKey, str]:
    """Make a key for `owner`; returns it with the clear key, which is never stored or shown again."""
    _require(actor, "add")
    with change_context(actor=actor, reason=reason, source=source):
        api_key = APIKey(name=name, owner=owner, scope=scope, expiry_date=expires, rate_limit=rate_limit)
        raw_key = APIKey.objects.assign_key(api_key)
        api_key.full_clean()
        api_key.save()
        changes = [
            {"field": _label(field), "old": None, "new": _shown(api_key, field)}
            for field in ("name", "prefix", "owner", "scope", "expiry_date", "rate_limit")
        ]
        _record(api_key, action="+", changes=changes)
    keys.keys_changed()
    return api_key, raw_key


@transaction.atomic
def api_key_save(*, api_key: APIKey, actor: User | None, reason: str, source: str) -> APIKey:
    """Save changes to an existing key (name, scope, expiry, rate limit); a revoked key stays
    revoked and the owner never changes. Saving an unchanged key records nothing."""
    if api_key.pk is None:
        raise ValidationError("Create keys with api_key_create: the clear key is shown only then.")
    _require(actor, "change")
    with change_context(actor=actor, reason=reason, source=source):
        before = APIKey.objects.select_for_update().select_related("owner").get(pk=api_key.pk)
        if api_key.owner_id != before.owner_id:
            raise ValidationError("A key acts as one user for its whole life: make a new key instead.")
        api_key.full_clean()
        if not _record_edit(before, api_key):
            return api_key
        api_key.save()
    keys.keys_changed()
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: APIKey, actor: User | None, reason: str, source: str) -> APIKey:
    """Stop the key for good (this cannot be undone); revoking a revoked key records nothing."""
    _require(actor, "change")
    with change_context(actor=actor, reason=reason, source=source):
        if api_key.revoked:
            return api_key
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
        _record(api_key, action="~", changes=[{"field": _label("revoked"), "old": False, "new": True}])
    keys.keys_changed()
    return api_key


@transaction.atomic
def api_key_expire(
    *, api_key: APIKey, at: datetime | None = None, actor: User | None, reason: str, source: str
) -> APIKey:
    """Let the key expire at `at` (now when not given); an earlier expiry is kept, and then
    nothing is recorded."""
    _require(actor, "change")
    at = at or timezone.now()
    with change_context(actor=actor, reason=reason, source=source):
        if api_key.expiry_date is not None and api_key.expiry_date <= at:
            return api_key
        old = _shown(api_key, "expiry_date")
        api_key.expiry_date = at
        api_key.save(update_fields=["expiry_date"])
        _record(
            api_key,
            action="~",
            changes=[{"field": _label("expiry_date"), "old": old, "new": at.isoformat()}],
        )
    keys.keys_changed()
    return api_key
