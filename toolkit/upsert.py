"""Reading the rows a write changes, and knowing when a write changes nothing.

Services read the row a PUT or PATCH writes with `locked()` and the rows it refers to with
`find()`, then compare before and after with `is_noop()`: a write that changes nothing
records nothing, and only needs the permission to change. `put()` is that whole step for a
row written as one piece.

A bulk run (`audit.bulk.BulkRun`, used by the scheduled-change sweep) loads the rows of many
writes at once and stands in front of the database while the same services run, one write
after the other: `locked()` and `find()` answer from the rows it holds (`current_rows()`).
What it does not hold raises `NotHeld`, and that write runs on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from django.core.exceptions import ValidationError
from django.db import connections, models


class NotHeld(Exception):
    """A bulk run was asked for a row it did not load: the write must run on its own."""


class HeldRows(Protocol):
    """Rows loaded ahead for a bulk run. `load` reads the rows of a queryset whose `fields`
    (a name, or a tuple of names in sorted order) hold one of `values` (values or tuples of
    values), locked if the queryset locks; with `many`, several rows may share a value.
    `get` answers a lookup (field name → value) with its one row, or None for a row known not
    to exist; `group` with every row loaded `many` for it. Both raise NotHeld for what was not
    loaded."""

    def load(
        self,
        queryset: models.QuerySet,
        fields: str | tuple[str, ...],
        values: Iterable[Any],
        *,
        many: bool = False,
    ) -> None: ...

    def get(self, model: type[models.Model], lookup: dict[str, Any]) -> models.Model | None: ...

    def group(self, model: type[models.Model], lookup: dict[str, Any]) -> list[models.Model]: ...


_local = threading.local()


def current_rows() -> HeldRows | None:
    return getattr(_local, "rows", None)


@contextmanager
def answering_from(rows: HeldRows) -> Iterator[None]:
    """Within: `locked()` and `find()` answer from `rows` instead of the database."""
    outer = current_rows()
    _local.rows = rows
    try:
        yield
    finally:
        _local.rows = outer


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


def find(queryset: models.QuerySet, *, missing: str | None = None, **lookup: Any) -> Any:
    """The one row of `queryset` matching `lookup` (a single field), or None; with `missing`,
    no row raises the model's DoesNotExist saying it (the API answers 404)."""
    row = _lookup(queryset, lookup, lock=False)
    if row is None and missing is not None:
        raise queryset.model.DoesNotExist(missing)
    return row


def rows_of(queryset: models.QuerySet, **lookup: Any) -> list[Any]:
    """Every row of `queryset` matching `lookup` (read for a check across rows, such as
    overlapping windows)."""
    held = current_rows()
    if held is not None:
        return held.group(queryset.model, lookup)
    return list(queryset.filter(**lookup))


def locked(
    queryset: models.QuerySet, *, partial: bool, missing: str, **lookup: Any
) -> tuple[Any, dict[str, Any] | None]:
    """The row a PUT or PATCH writes to, locked until the transaction ends, with its stored
    values (for `is_noop`). (None, None) when a PUT will create it; a PATCH of a row that does
    not exist raises the model's DoesNotExist saying `missing`.

    Writes of one row may race (a billing sync retrying, several workers): with no row to
    lock yet, the lookup takes a transaction-long advisory lock on it first (PostgreSQL), so
    of two PUTs creating the same object one creates it and the other then finds and
    replaces it, instead of both creating and one failing on the unique key."""
    row = _lookup(queryset, lookup, lock=True)
    if row is None:
        if partial:
            raise queryset.model.DoesNotExist(missing)
        return None, None
    return row, stored_values(row)


def put(
    queryset: models.QuerySet,
    *,
    lookup: dict[str, Any],
    values: dict[str, Any],
    partial: bool,
    missing: str,
    save: Callable[[Any], Any],
    unchanged: Callable[[Any], Any],
    new: Callable[[], Any] | None = None,
) -> tuple[Any, bool]:
    """Create or replace one row: the row `lookup` names, locked (or `new()`, by default the
    model with `lookup`'s values), given `values`; then `save(row)` when that changes what
    the database holds, else `unchanged(row)` (the permission an unchanged write needs).
    Returns the row and whether it was created."""
    row, before = locked(queryset, partial=partial, missing=missing, **lookup)
    created = row is None
    if created:
        row = new() if new is not None else queryset.model(**lookup)
    assign(row, values)
    if is_noop(row, before):
        unchanged(row)
    else:
        save(row)
    return row, created


def _lookup(queryset: models.QuerySet, lookup: dict[str, Any], *, lock: bool) -> Any:
    held = current_rows()
    if held is not None:
        return held.get(queryset.model, lookup)
    if any(isinstance(value, str) and "\x00" in value for value in lookup.values()):
        return None  # no stored key holds a NUL, and PostgreSQL refuses to compare one
    if not lock:
        return queryset.filter(**lookup).first()
    row = queryset.select_for_update().filter(**lookup).first()
    if row is None and _lock_lookup(queryset, lookup):
        row = queryset.select_for_update().filter(**lookup).first()
    return row


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
