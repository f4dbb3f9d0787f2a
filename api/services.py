"""Writes to API keys: create (the key is returned once, only its hash is kept), revoke,
expire. Each moves the keys revision so every web process stops accepting a changed key on
its next request."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from api import keys
from api.models import APIKey

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def api_key_create(
    *,
    name: str,
    owner: User,
    scope: str,
    expires: datetime | None = None,
    rate_limit: int | None = None,
) -> tuple[APIKey, str]:
    """Make a key for `owner`; returns it with the clear key, which is never stored or shown again."""
    api_key = APIKey(name=name, owner=owner, scope=scope, expiry_date=expires, rate_limit=rate_limit)
    raw_key = APIKey.objects.assign_key(api_key)
    api_key.full_clean()
    api_key.save()
    keys.keys_changed()
    return api_key, raw_key


@transaction.atomic
def api_key_save(*, api_key: APIKey) -> APIKey:
    """Save changes to an existing key (name, scope, expiry, rate limit); a revoked key stays revoked."""
    if api_key.pk is None:
        raise ValidationError("Create keys with api_key_create: the clear key is shown only then.")
    api_key.full_clean()
    api_key.save()
    keys.keys_changed()
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: APIKey) -> APIKey:
    """Stop the key for good (this cannot be undone)."""
    if not api_key.revoked:
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
        keys.keys_changed()
    return api_key


@transaction.atomic
def api_key_expire(*, api_key: APIKey, at: datetime | None = None) -> APIKey:
    """Let the key expire at `at` (now when not given); an earlier expiry is kept."""
    at = at or timezone.now()
    if api_key.expiry_date is None or api_key.expiry_date > at:
        api_key.expiry_date = at
        api_key.save(update_fields=["expiry_date"])
        keys.keys_changed()
    return api_key
