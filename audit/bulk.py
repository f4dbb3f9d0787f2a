"""Many rows at once without escaping history: the rows, their history rows and their audit
entries are each written in batches, each with its change context's who, why, source and
request id.

- `bulk_create_audited`: new rows of one model (the seeders).
- `AuditedWrites`: creations and saves recorded one at a time, written together.
- `BulkRun`: many writes made through the very services that make one write, fast. The run
  loads the rows of all its writes ahead, in a few queries (`load`); while a write runs, the
  services' reads (`toolkit.upsert.locked`/`find`) are answered from those rows and their
  saves (`audit.writes.save_audited`) are validated and recorded instead of made; `flush()`
  writes them all through `AuditedWrites`. So the rules (permissions, no-op detection,
  validation) are the services' own, once. A write that reads anything the run did not load,
  or deletes, raises `NotHeld`: its caller makes it on its own instead.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction
from django.utils import timezone

from audit.history import (
    TrackedModel,
    field_changes,
    has_unsaved_changes,
    kept_apart,
    require_context,
    stored_alike,
)
from audit.models import AuditEntry
from toolkit import change_context as change_contexts
from toolkit.change_context import ChangeContext
from toolkit.upsert import NotHeld, answering_from

M = TypeVar("M", bound=models.Model)


@transaction.atomic
def bulk_create_audited(model: type[M], objects: Sequence[M], *, batch_size: int = 2000) -> list[M]:
    """Insert `objects` (new, validated by the caller) with one history row and one audit
    entry each. Refused outside a change context, like any tracked write."""
    if not objects:
        return []
    context = require_context(objects[0])
    # A plain QuerySet: the tracked manager refuses bulk writes precisely so that they go here.
    created = models.QuerySet(model).bulk_create(objects, batch_size=batch_size)
    records = model._history_records
    history_model = model.history.model
    now = timezone.now()
    fields = records.fields_included(model)
    history_rows = [
        history_model(
            **{field.attname: getattr(obj, field.attname) for field in fields},
            history_date=now,
            history_type="+",
            history_user=context.actor,
            history_change_reason=context.reason,
            source=context.source,
            request_id=context.request_id,
        )
        for obj in created
    ]
    models.QuerySet(history_model).bulk_create(history_rows, batch_size=batch_size)
    content_type = ContentType.objects.get_for_model(model)
    models.QuerySet(AuditEntry).bulk_create(
        [
            AuditEntry(
                history_date=now,
                user=context.actor,
                source=context.source,
                request_id=context.request_id,
                reason=context.reason,
                content_type=content_type,
                object_id=str(obj.pk),
                object_repr=str(obj)[:200],
                action="+",
                changes=field_changes(obj, records, "+"),
                history_id=row.pk,
            )
            for obj, row in zip(created, history_rows, strict=True)
        ],
        batch_size=batch_size,
    )
    return created


@dataclass(slots=True)
class _Record:
    """One history row to write: the object's tracked values when the write was recorded."""

    instance: models.Model
    history_type: str
    values: dict[str, Any]
    changes: list[dict]
    object_repr: str
    history_date: datetime
    context: ChangeContext


class AuditedWrites:
    """Writes recorded one at a time, each under the change context in force when it is
    recorded (its own actor, reason and request id), then written in bulk by `flush()`: new
    rows by COPY, changed rows in one UPDATE per model, then every history row and audit
    entry. What `flush()` writes is what saving each object at the moment it was recorded
    would have written (`save()` through simple-history and `audit.history`): an object
    changed twice gets two history rows, one created and then changed is inserted once with
    its last values and gets a "+" and a "~" row, and an object saved with no change to its
    tracked fields gets no history row (but is written, as save() writes it). The
    scheduled-change sweep's batches use it (audit.batch). PostgreSQL only.

    Objects must not be mutated between `created()`/`changed()` calls other than by the
    write being recorded; models with many-to-many history or `auto_now` fields are refused
    (their saves do more than this reproduces)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._records: list[_Record] = []
        self._created: dict[type[models.Model], dict[int, models.Model]] = {}
        self._changed: dict[type[models.Model], dict[int, tuple[models.Model, dict[str, Any]]]] = {}

    def __bool__(self) -> bool:
        return bool(self._records or self._changed or self._created)

    def created(self, instance: models.Model) -> None:
        """Record the creation of `instance` (validated by the caller), as `save()` would."""
        model = self._accept(instance)
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now_add", False):
                field.pre_save(instance, add=True)  # stamped now, as save() does, and kept by flush()
        self._record(instance, "+")
        self._created.setdefault(model, {})[id(instance)] = instance

    def changed(self, instance: models.Model, *, known: Mapping | None = None) -> bool:
        """Record a save of `instance` (loaded, then changed and validated by the caller).
        Returns whether a history row was recorded: none when no tracked field changed, as
        with `save()`. `known`: rows the audit log may name as foreign keys' old targets."""
        model = self._accept(instance)
        if id(instance) not in self._created.get(model, {}):
            changed = self._changed.setdefault(model, {})
            if id(instance) not in changed:
                # The values the database holds now: the instance's loaded values, before this write.
                changed[id(instance)] = (instance, dict(instance._loaded_values))
        if not has_unsaved_changes(instance, model._history_records):
            return False
        self._record(instance, "~", known=known)
        return True

    @staticmethod
    @functools.cache
    def takes(model: type[models.Model]) -> bool:
        """Whether saves of `model` can be written here: a tracked model without many-to-many
        history or `auto_now` fields."""
        records = getattr(model, "_history_records", None)
        return (
            issubclass(model, TrackedModel)
            and records is not None
            and not records.m2m_fields
            and not any(getattr(field, "auto_now", False) for field in model._meta.concrete_fields)
        )

    def _accept(self, instance: models.Model) -> type[models.Model]:
        model = type(instance)
        if not self.takes(model):
            raise TypeError(
                f"{model._meta.label} is not a tracked model without many-to-many history or auto_now "
                "fields: save it through its service."
            )
        return model

    def _record(self, instance: models.Model, history_type: str, *, known: Mapping | None = None) -> None:
        context = require_context(instance)
        records = type(instance)._history_records
        self._records.append(
            _Record(
                instance=instance,
                history_type=history_type,
                values={
                    f.attname: kept_apart(getattr(instance, f.attname))
                    for f in records.fields_included(instance)
                },
                changes=field_changes(instance, records, history_type, known=known),
                object_repr=str(instance)[:200],
                history_date=timezone.now(),
                context=context,
            )
        )
        # As after a save: the next change of this object is compared with these values.
        instance.remember_loaded_values()

    @transaction.atomic
    def flush(self, *, batch_size: int = 1000) -> None:
        """Write everything recorded, in bulk, and start over."""
        for model, objects in self._created.items():
            _insert(model, list(objects.values()))
        for model, objects in self._changed.items():
            fields = _fields_changed(model, objects.values())
            if fields:
                rows = [instance for instance, _ in objects.values()]
                for start in range(0, len(rows), batch_size):
                    _bulk_update(model, rows[start : start + batch_size], fields)
        # History rows and audit entries go in as plain rows: no model instance each.
        by_model: dict[type[models.Model], list[_Record]] = {}
        for record in self._records:
            by_model.setdefault(type(record.instance), []).append(record)
        history_ids: dict[int, int] = {}
        for model, records in by_model.items():
            history_model = model.history.model  # builds a manager class: once per model
            fields = [f for f in history_model._meta.concrete_fields if not f.primary_key]
            pk = model._meta.pk.attname
            rows = []
            for record in records:
                values = {
                    **record.values,
                    pk: record.instance.pk,  # known once inserted
                    "history_date": record.history_date,
                    "history_type": record.history_type,
                    "history_user_id": record.context.actor.pk if record.context.actor else None,
                    "history_change_reason": record.context.reason,
                    "source": record.context.source,
                    "request_id": record.context.request_id,
                }
                rows.append([values[f.attname] for f in fields])
            ids = _copy(history_model, fields, rows, with_pk=True)
            history_ids.update(zip(map(id, records), ids, strict=True))
        fields = [f for f in AuditEntry._meta.concrete_fields if not f.primary_key]
        rows = []
        for record in self._records:
            values = {
                "history_date": record.history_date,
                "user_id": record.context.actor.pk if record.context.actor else None,
                "source": record.context.source,
                "request_id": record.context.request_id,
                "reason": record.context.reason,
                "content_type_id": ContentType.objects.get_for_model(type(record.instance)).pk,
                "object_id": str(record.instance.pk),
                "object_repr": record.object_repr,
                "action": record.history_type,
                "changes": record.changes,
                "history_id": history_ids[id(record)],
            }
            rows.append([values[f.attname] for f in fields])
        _copy(AuditEntry, fields, rows, with_pk=False)
        self._reset()


def _insert(model: type[models.Model], objects: list[models.Model]) -> None:
    """Insert `objects` (PostgreSQL), setting their primary keys, as saving each would."""
    connection = connections[router.db_for_write(model)]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    rows = [[_value(f, obj) for f in fields] for obj in objects]
    for obj, pk in zip(objects, _copy(model, fields, rows, with_pk=True), strict=True):
        setattr(obj, model._meta.pk.attname, pk)
        obj._state.adding, obj._state.db = False, connection.alias


# Fields whose Python values psycopg adapts as they are (anything else goes through the
# field's get_db_prep_save: JSON, countries...).
_PLAIN_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.DateTimeField,
    models.ForeignKey,
    models.IntegerField,
    models.PositiveIntegerField,
    models.SlugField,
    models.TextField,
    models.UUIDField,
)
_PLAIN_VALUES = (str, int, bool, datetime, uuid.UUID, type(None))


def _copy(
    model: type[models.Model], fields: list[models.Field], rows: list[list[Any]], *, with_pk: bool
) -> list:
    """COPY `rows` (values of `fields`, in order) into `model`'s table (PostgreSQL). With
    `with_pk`, the primary keys are drawn from the table's sequence first, in one query, and
    returned in the order of `rows`. bulk_create's INSERT … UNNEST quotes every value of its
    arrays in Python, which took most of a sweep batch's write."""
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    quote = connection.ops.quote_name
    plain = [type(f) in _PLAIN_FIELDS for f in fields]
    prepared = [
        [
            value
            if is_plain and isinstance(value, _PLAIN_VALUES)
            else field.get_db_prep_save(value, connection)
            for field, is_plain, value in zip(fields, plain, row, strict=True)
        ]
        for row in rows
    ]
    columns = [f.column for f in fields]
    ids: list = []
    with connection.cursor() as cursor:
        if with_pk:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            columns.insert(0, meta.pk.column)
            prepared = [[pk, *row] for pk, row in zip(ids, prepared, strict=True)]
        sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        started = time.monotonic()
        with cursor.cursor.copy(sql) as copy:
            for row in prepared:
                copy.write_row(row)
        if connection.queries_logged:  # COPY bypasses Django's query log: count it there too
            connection.queries_log.append(
                {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
            )
    return ids


def _value(field: models.Field, obj: models.Model) -> Any:
    """What saving `obj` would store in `field`; an auto_now_add time stamped already is kept."""
    if getattr(field, "auto_now_add", False) and getattr(obj, field.attname) is not None:
        return getattr(obj, field.attname)
    return field.pre_save(obj, True)


def _bulk_update(model: type[models.Model], objects: list[models.Model], names: list[str]) -> None:
    """Set `names` of each of `objects` to its own values, in one UPDATE … FROM (VALUES …)
    (PostgreSQL): Django's bulk_update builds a CASE per field and row, which cost more
    Python than the rest of the sweep's batch."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    fields = [model._meta.get_field(name) for name in names]
    groups: dict[tuple, list[Any]] = {}
    for obj in objects:
        values = tuple(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields)
        try:
            groups.setdefault(values, []).append(obj.pk)
        except TypeError:  # unhashable (JSON): no grouping
            groups = {}
            break
    if groups and len(groups) <= 3:
        # The same values for many rows (a batch's statuses): one UPDATE … WHERE id = ANY(…) each.
        for values, pks in groups.items():
            sql = (
                f"UPDATE {quote(model._meta.db_table)} SET "
                + ", ".join(f"{quote(f.column)} = %s" for f in fields)
                + f" WHERE {quote(pk.column)} = ANY(%s)"
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, [*values, pks])
        return
    columns = [pk, *fields]
    row = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET "
        + ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
        + f" FROM (VALUES {', '.join([row] * len(objects))}) AS v("
        + ", ".join(quote(f.column) for f in columns)
        + f") WHERE t.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    params = [
        field.get_db_prep_save(getattr(obj, field.attname), connection)
        for obj in objects
        for field in columns
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _fields_changed(model: type[models.Model], objects) -> list[str]:
    """The concrete fields (names) any of `objects` holds differently from the database."""
    names = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        for instance, stored in objects:
            if not stored_alike(field, stored.get(field.attname), getattr(instance, field.attname)):
                names.append(field.name)
                break
    return names


_run: ContextVar[BulkRun | None] = ContextVar("bulk_run", default=None)


def current_run() -> BulkRun | None:
    """The bulk run whose write is being made, if any (`audit.writes` asks)."""
    return _run.get()


class BulkRun:
    """Writes made through the services, with their rows loaded ahead and their saves written
    together (the module docstring says how). Use:

        run = BulkRun()
        run.load(queryset, "external_id", ids)        # what the writes will read
        with run.write():                              # one write, through its service
            services.customer_put(...)
        run.flush()                                    # everything, in bulk (PostgreSQL)

    A write that raises leaves nothing behind: the rows it changed are put back as they were
    loaded (or last recorded), and nothing it saved is recorded. Only a creation or a save per
    object and write is recorded (no deletes, no many-to-many sets). Validation is the
    model's `full_clean()` without its unique and constraint checks, which would query: the
    database's own keys and constraints refuse such a row when `flush()` writes, and the
    caller then makes the run's writes one by one."""

    def __init__(self) -> None:
        self.writes = AuditedWrites()
        self._maps: dict[tuple[type[models.Model], tuple[str, ...]], dict[tuple, models.Model | None]] = {}
        self._groups: dict[tuple[type[models.Model], tuple[str, ...]], dict[tuple, list[models.Model]]] = {}
        self._by_pk: dict[type[models.Model], dict[Any, models.Model]] = {}
        self._created: set[int] = set()
        self._choices_checked: dict[tuple, tuple[bool, Any]] = {}
        self._handed: list[models.Model] | None = None
        self._staged: list[tuple[models.Model, ChangeContext]] | None = None

    # -- the rows (toolkit.upsert.HeldRows)

    def load(
        self,
        queryset: models.QuerySet,
        fields: str | tuple[str, ...],
        values: Iterable[Any],
        *,
        many: bool = False,
    ) -> None:
        names = (fields,) if isinstance(fields, str) else tuple(fields)
        keys = {(value,) if isinstance(fields, str) else tuple(value) for value in values}
        held = (self._groups if many else self._maps).setdefault((queryset.model, names), {})
        wanted = keys - held.keys()
        if not wanted:
            return
        if len(names) == 1:
            rows = queryset.filter(**{f"{names[0]}__in": [key[0] for key in wanted]})
        else:  # each field among its values, then the combinations wanted kept
            among = {f"{name}__in": {key[i] for key in wanted} for i, name in enumerate(names)}
            rows = queryset.filter(**among)
        for key in wanted:
            held[key] = [] if many else None
        for row in rows.order_by("pk"):  # one order of row locks for every worker
            key = tuple(getattr(row, name) for name in names)
            if key in wanted:
                if many:
                    held[key].append(row)
                else:
                    held[key] = row
                self._remember(row)

    def get(self, model: type[models.Model], lookup: dict[str, Any]) -> models.Model | None:
        row = self._held(self._maps, model, lookup)
        if row is not None and self._handed is not None:
            self._handed.append(row)
        return row

    def group(self, model: type[models.Model], lookup: dict[str, Any]) -> list[models.Model]:
        return list(self._held(self._groups, model, lookup))

    @staticmethod
    def _held(held: dict, model: type[models.Model], lookup: dict[str, Any]) -> Any:
        names = tuple(sorted(lookup))
        try:
            return held[(model, names)][tuple(lookup[name] for name in names)]
        except (KeyError, TypeError):
            raise NotHeld(f"{model._meta.label} by {', '.join(names)} was not loaded") from None

    def _remember(self, row: models.Model) -> None:
        """Keep `row`, and the rows loaded with it, by primary key: the audit log names a
        foreign key's old target from these."""
        self._by_pk.setdefault(type(row), {})[row.pk] = row
        for field in row._meta.concrete_fields:
            if field.many_to_one and field.is_cached(row):
                related = field.get_cached_value(row)
                if related is not None and related.pk is not None:
                    self._by_pk.setdefault(type(related), {})[related.pk] = related

    # -- the writes

    @contextmanager
    def write(self) -> Iterator[None]:
        """Make one write (a service call) inside: reads answered from the rows, saves recorded
        when it returns; if it raises, as if it had not run."""
        self._handed, self._staged = [], []
        token = _run.set(self)
        try:
            with answering_from(self):
                yield
        except BaseException:
            for row in self._handed:
                _put_back(row)
            raise
        else:
            staged = self._staged
            for instance, context in staged:
                with change_contexts.within(context):
                    self._record(instance)
        finally:
            _run.reset(token)
            self._handed = self._staged = None

    def save(self, instance: models.Model) -> None:
        """A service's save, inside `write()`: validated now, recorded if the write succeeds."""
        if self._staged is None:
            raise RuntimeError("BulkRun.save() outside a write")
        if any(staged is instance for staged, _ in self._staged):
            raise NotHeld("An object saved twice in one write is not made in bulk.")
        if not AuditedWrites.takes(type(instance)):
            raise NotHeld(f"{type(instance)._meta.label} is not written in bulk.")
        for field in instance._meta.concrete_fields:
            if field.many_to_one and field.is_cached(instance):
                related = field.get_cached_value(instance)
                if related is not None and related.pk is None:  # written at flush: no id yet
                    raise NotHeld(f"{field.name} of {type(instance)._meta.label} is not written yet.")
        self._full_clean(instance)
        self._staged.append((instance, require_context(instance)))
        self._handed.append(instance)

    def _full_clean(self, instance: models.Model) -> None:
        """`instance.full_clean()` without its unique and constraint checks (see the class
        docstring), and with each field that has choices checked once per value and run: a
        country is one of 250 choices, looked through anew on every check otherwise."""
        exclude: set[str] = set()
        errors: dict[str, list[str]] = {}
        for field in _choice_fields(type(instance)):
            raw = getattr(instance, field.attname)
            try:
                key = (field, type(raw), raw)
                outcome = self._choices_checked.get(key)
            except TypeError:  # unhashable (a list of countries): checked with the rest
                continue
            exclude.add(field.name)
            if field.blank and raw in field.empty_values:
                continue  # as Model.clean_fields
            if outcome is None:
                try:
                    outcome = self._choices_checked[key] = (True, field.clean(raw, instance))
                except ValidationError as error:
                    outcome = self._choices_checked[key] = (False, error.messages)
            if outcome[0]:
                setattr(instance, field.attname, outcome[1])
            else:
                errors[field.name] = outcome[1]
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            errors.update(error.message_dict)
        if errors:
            raise ValidationError(errors)

    def _record(self, instance: models.Model) -> None:
        if instance.pk is None and id(instance) not in self._created:
            self.writes.created(instance)
            self._created.add(id(instance))
            for (model, names), found in self._maps.items():
                if model is type(instance):
                    found[tuple(getattr(instance, name) for name in names)] = instance
            for (model, names), groups in self._groups.items():
                if model is type(instance):
                    groups.setdefault(tuple(getattr(instance, name) for name in names), []).append(instance)
        else:
            self.writes.changed(instance, known=self._by_pk)

    def flush(self) -> None:
        """Write everything recorded (PostgreSQL), in one savepoint: all or nothing."""
        with transaction.atomic():
            self.writes.flush()
        self._created.clear()  # inserted: each has its primary key now


@functools.cache
def _choice_fields(model: type[models.Model]) -> list[models.Field]:
    return [field for field in model._meta.concrete_fields if field.choices]


def _put_back(row: models.Model) -> None:
    """Undo what a refused write set on `row`: its fields as loaded, or as last recorded."""
    loaded = getattr(row, "_loaded_values", None)
    if loaded is None:  # new in the refused write: it is dropped with it
        return
    for name, value in loaded.items():
        setattr(row, name, kept_apart(value))
