"""Helpers for create-or-replace writes: a PUT that changes nothing writes nothing.

Services record no history for an unchanged save, but they do move cache revisions, and
some field types (a country list) compare unequal to their own stored form. So a view
compares the object before and after applying the body, in the database's terms, and when
nothing differs it only checks the permission the service would have checked.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models
from rest_framework.exceptions import NotFound


def stored_values(instance: models.Model) -> dict[str, Any]:
    """Each concrete field's value as the database would store it."""
    return {
        field.attname: field.get_prep_value(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
    }


def is_noop(instance: models.Model, before: dict[str, Any] | None) -> bool:
    """True when `instance` (loaded, then given the body's values) would store exactly what
    it stored before. The model's `clean()` runs first, for its normalisations (sorted
    levels, canonical values); if it refuses the values, this is no no-op: the service will
    say why."""
    if before is None:
        return False
    try:
        instance.clean()
    except ValidationError:
        return False
    return stored_values(instance) == before


def locked(
    queryset: models.QuerySet, *, partial: bool, missing: str, **lookup: Any
) -> tuple[Any, dict[str, Any] | None]:
    """The row a PUT or PATCH writes to, locked until the transaction ends, with its stored
    values (for `is_noop`). (None, None) when a PUT will create it; a PATCH of a row that does
    not exist is a 404 saying `missing`.

    Writes of one row may race (a billing sync retrying, several workers): with no row to
    lock yet, the lookup takes a transaction-long advisory lock on it first (PostgreSQL), so
    of two PUTs creating the same object one creates it and the other then finds and
    replaces it, instead of both creating and one failing on the unique key."""
    row = queryset.select_for_update().filter(**lookup).first()
    if row is None and _lock_lookup(queryset, lookup):
        row = queryset.select_for_update().filter(**lookup).first()
    if row is None:
        if partial:
            raise NotFound(missing)
        return None, None
    return row, stored_values(row)


def _lock_lookup(queryset: models.QuerySet, lookup: dict[str, Any]) -> bool:
    name = "|".join(f"{key}={value}" for key, value in sorted(lookup.items()))
    return advisory_lock(scope=queryset.model._meta.label, name=name, using=queryset.db)


def advisory_lock(*, scope: str, name: str, using: str = "default") -> bool:
    """Take PostgreSQL's advisory lock named by `scope` and `name` until the transaction
    ends (call it inside one); False on a database without them (SQLite serialises writes)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
            [scope, name.replace("\x00", "")],
        )
    return True


def assign(instance: models.Model, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(instance, name, value)
