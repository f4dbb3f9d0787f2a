"""API keys as the hot path sees them: checked in process memory, without a query.

Each web process remembers the keys it has seen (prefix → hash, scope, owner, expiry) with
the keys revision it read them under. Every request reads that revision in its one round trip
(`api.authentication`); when any key or key owner changed since, the key is read again from
the database. Revoking a key, expiring it or deactivating its owner therefore takes effect on
the next request, in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator

from api.models import APIKey
from toolkit.revisions import bump, read

REVISION_KEY = "rev:apikeys"
MAX_REMEMBERED = 10_000
_generator = KeyGenerator()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What authenticating and throttling a key need; `usable` is false once revoked or
    when its owner is inactive."""

    prefix: str
    hashed_key: str
    scope: str
    owner_id: int
    usable: bool
    expires: datetime | None
    rate_limit: int | None
    # `hashed_key`'s SHA-512 digest when the package's preferred hasher made it, worked out
    # once when the key is loaded rather than on every check.
    digest: bytes | None = None

    def accepts(self, raw_key: str, at: datetime) -> bool:
        """The presented key matches the stored hash (in constant time) and may be used now."""
        if not self.usable or (self.expires is not None and self.expires <= at):
            return False
        if self.digest is not None:
            # The package's own hasher, compared as its `verify` does, without its string
            # formatting and password-hasher layers (a check's hot path).
            return hmac.compare_digest(hashlib.sha512(raw_key.encode()).digest(), self.digest)
        return _generator.verify(raw_key, self.hashed_key)


_SHA512 = "sha512$$"


def _sha512_digest(hashed_key: str) -> bytes | None:
    """The SHA-512 digest in a hash made by the package's preferred hasher, else None."""
    if not hashed_key.startswith(_SHA512):
        return None
    try:
        return bytes.fromhex(hashed_key[len(_SHA512) :])
    except ValueError:
        return None


MAX_REMEMBERED_BAD = 1_000

# Good keys and known-bad prefixes are remembered apart: a flood of made-up keys fills only
# the second, and never pushes a key in use out of the first (it would cost a query again).
_remembered: OrderedDict[str, tuple[int, KeyRecord | None]] = OrderedDict()
_remembered_bad: OrderedDict[str, tuple[int, KeyRecord | None]] = OrderedDict()
_lock = threading.Lock()


def remembered(prefix: str) -> tuple[int, KeyRecord | None] | None:
    """(revision, record) this process holds for `prefix`; a None record is a known-bad prefix."""
    with _lock:
        for known in (_remembered, _remembered_bad):
            entry = known.get(prefix)
            if entry is not None:
                known.move_to_end(prefix)
                return entry
        return None


def remember(prefix: str, revision: int, record: KeyRecord | None) -> None:
    with _lock:
        known, other, limit = (
            (_remembered, _remembered_bad, MAX_REMEMBERED)
            if record is not None
            else (_remembered_bad, _remembered, MAX_REMEMBERED_BAD)
        )
        other.pop(prefix, None)
        known[prefix] = (revision, record)
        known.move_to_end(prefix)
        while len(known) > limit:
            known.popitem(last=False)


def forget_all() -> None:
    """Drop what this process remembers (tests; never needed for correctness)."""
    with _lock:
        _remembered.clear()
        _remembered_bad.clear()


def load(prefix: str) -> KeyRecord | None:
    """Read one key from the database (one query, with its owner)."""
    row = (
        APIKey.objects.filter(prefix=prefix)
        .values("hashed_key", "scope", "owner_id", "owner__is_active", "revoked", "expiry_date", "rate_limit")
        .first()
    )
    if row is None:
        return None
    return KeyRecord(
        prefix=prefix,
        hashed_key=row["hashed_key"],
        scope=row["scope"],
        owner_id=row["owner_id"],
        usable=row["owner__is_active"] and not row["revoked"],
        expires=row["expiry_date"],
        rate_limit=row["rate_limit"],
        digest=_sha512_digest(row["hashed_key"]),
    )


def revision() -> int:
    """The keys revision, recreated from the clock when the cache lost it."""
    return read(REVISION_KEY)[0]


def keys_changed() -> None:
    """A key or a key owner changed: every process re-reads the keys it uses, after commit."""
    transaction.on_commit(lambda: bump(REVISION_KEY))


def split(raw_key: str) -> str | None:
    """The prefix of a well-formed key (`<8 characters>.<secret>`), else None."""
    prefix, dot, secret = raw_key.partition(".")
    if not dot or len(prefix) != 8 or not prefix.isalnum() or not secret or len(raw_key) > 200:
        return None
    return prefix


def now() -> datetime:
    return timezone.now()
