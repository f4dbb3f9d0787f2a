"""Revision stamps that cached entitlement answers are keyed by (NOTES.md, hot path).

The catalog revision moves with any change to features, items, entitlements, segments or
targeting rules; a customer's revision with any change to its subscriptions, add-ons,
overrides or segment lists. A plan change touching 50k customers is one increment, not 50k
cache deletes. Bumps happen after commit so a reader never caches a rolled-back state.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction

CATALOG_KEY = "rev:catalog"


def customer_key(customer_id: int) -> str:
    return f"rev:customer:{customer_id}"


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:
        # Unknown key: start from a value that cannot collide with a stamp seen before the
        # cache lost it (a reader holding the old number must miss).
        import time

        cache.set(key, int(time.time() * 1000), timeout=None)


def catalog_changed() -> None:
    """Every cached answer may be stale: move the catalog revision after commit."""
    transaction.on_commit(lambda: _bump(CATALOG_KEY))


def customers_changed(customer_ids: Iterable[int]) -> None:
    """These customers' cached answers may be stale: move their revisions after commit."""
    keys = [customer_key(pk) for pk in set(customer_ids)]
    transaction.on_commit(lambda: [_bump(key) for key in keys])


def current(customer_id: int) -> tuple[int, int]:
    """(catalog revision, customer revision), read in one cache round trip."""
    key = customer_key(customer_id)
    values = cache.get_many([CATALOG_KEY, key])
    return values.get(CATALOG_KEY, 0), values.get(key, 0)
