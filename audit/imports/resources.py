"""`ServiceResource`, the base of every app's import and export columns (`<app>/resources.py`),
and the results of its rows (`ImportRow`, `ImportResult`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import DatabaseError, connection, models, transaction
from import_export.instance_loaders import BaseInstanceLoader
from import_export.resources import Resource
from import_export.results import Result, RowResult

from audit.bulk import BulkRun, NotHeld
from audit.imports.cells import cell_text, parse_bool
from toolkit import revisions
from toolkit.change_context import normalize_reason
from toolkit.spreadsheet import safe_cell, unquote_cell

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

SOURCE = "import"
PREVIEW_REASON = "Preview of an import (rolled back)"
DELETE_COLUMN = "delete"


class ImportRow(RowResult):
    """One line of the file: what it does (created, changed old → new, removed, unchanged) or
    why it is refused."""

    def __init__(self, line: int):
        super().__init__()
        self.line = line  # the line in the file, its header being line 1
        self.label = ""
        self.changes: list[tuple[str, str, str]] = []
        self.reasons: list[str] = []
        self.blank = False

    @property
    def refused(self) -> bool:
        return self.import_type in (self.IMPORT_TYPE_INVALID, self.IMPORT_TYPE_ERROR)

    @property
    def status(self) -> str:
        return STATUS_LABELS.get(self.import_type or "", "")


STATUS_LABELS = {
    RowResult.IMPORT_TYPE_NEW: "Create",
    RowResult.IMPORT_TYPE_UPDATE: "Change",
    RowResult.IMPORT_TYPE_DELETE: "Remove",
    RowResult.IMPORT_TYPE_SKIP: "Unchanged",
    RowResult.IMPORT_TYPE_INVALID: "Refused",
    RowResult.IMPORT_TYPE_ERROR: "Refused",
}


class ImportResult(Result):
    """The outcome of a preview or an apply, row by row."""

    applied = False  # set by run_import: the rows were written and committed
    request_id: uuid.UUID | None = None  # set by run_import: shared by every history row
    stale = False  # set by run_import: the outcome differed from the confirmed preview

    @property
    def lines(self) -> list[ImportRow]:
        return [row for row in self.rows if not row.blank]

    @property
    def refused(self) -> list[ImportRow]:
        return [row for row in self.rows if row.refused]

    @property
    def changes(self) -> list[ImportRow]:
        writes = (RowResult.IMPORT_TYPE_NEW, RowResult.IMPORT_TYPE_UPDATE, RowResult.IMPORT_TYPE_DELETE)
        return [row for row in self.rows if row.import_type in writes]

    @property
    def unchanged(self) -> list[ImportRow]:
        return [row for row in self.rows if row.is_skip() and not row.blank]

    @property
    def problems(self) -> list[str]:
        """What is wrong with the file as a whole (its columns)."""
        return [" ".join(getattr(error.error, "messages", [str(error.error)])) for error in self.base_errors]

    @property
    def is_clean(self) -> bool:
        """Nothing refused: the file may be applied."""
        return not self.base_errors and not self.refused

    @property
    def counts(self) -> dict[str, int]:
        return {
            "created": self.totals[RowResult.IMPORT_TYPE_NEW],
            "changed": self.totals[RowResult.IMPORT_TYPE_UPDATE],
            "removed": self.totals[RowResult.IMPORT_TYPE_DELETE],
            "unchanged": len(self.unchanged),
            "refused": len(self.refused),
        }

    @property
    def summary(self) -> str:
        return ", ".join(f"{count} {what}" for what, count in self.counts.items())

    @property
    def digest(self) -> str:
        """A fingerprint of what the rows would change: confirming a preview applies it only
        if applying changes exactly this."""
        planned = [(row.line, row.import_type, row.changes) for row in self.changes]
        return hashlib.sha256(json.dumps(planned).encode()).hexdigest()


class _NoLoader(BaseInstanceLoader):
    """ServiceResource finds rows' objects itself, from what `prepare` loaded."""

    def get_instance(self, row):  # pragma: no cover - never called
        raise NotImplementedError


class ServiceResource(Resource):
    """A resource whose rows are written by the services, one row at a time.

    Subclasses declare their columns as `Field()`s and implement:
    - `prepare(rows)`: load every object the rows name, in a constant number of queries;
    - `locate(cells)`: the object a row names (from what was loaded), or a new unsaved one;
    - `assign(obj, cells)`: set the columns present in the file (`self.present`) on it,
      raising ValidationError for a cell that cannot be read;
    - `render(obj)`: the object's columns, as exported (and compared, for old → new);
    - `save(obj, changed)` and, if deletable, `remove(obj)`: call the service.

    A preview and an apply are the same run of the rows through the services, inside a bulk
    run (`audit.bulk.BulkRun`, PostgreSQL: the saves are recorded and written together);
    `run_import` rolls a preview back. A write the bulk run cannot take (a delete, tags, a
    subscription's add-ons) is made on its own, after what came before it is written. If
    writing in bulk fails (a key or constraint the database refuses), the rows are run again
    one by one, so that the row at fault is refused in its own words.
    """

    title: ClassVar[str] = ""
    key_columns: ClassVar[tuple[str, ...]] = ()  # name one object; must be in the file
    optional_keys: ClassVar[tuple[str, ...]] = ()  # key columns whose cells may be empty
    deletable: ClassVar[bool] = False  # a `delete` column (true) removes the object
    # Exports from the admin of a parent model (items → their entitlements): model → lookup.
    parents: ClassVar[dict[type[models.Model], str]] = {}
    # Model field names in error messages, as the file's column names (when they differ).
    field_columns: ClassVar[dict[str, str]] = {}
    # What each column holds, for the import page and `bulk_import --help`.
    column_help: ClassVar[dict[str, str]] = {}

    class Meta:
        use_transactions = True
        instance_loader_class = _NoLoader

    def __init__(self, *, actor: User | None = None, reason: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.actor = actor
        self.reason = reason
        self.present: list[str] = []
        self._cells: list[dict[str, str]] = []
        self._seen: dict[tuple, int] = {}

    @classmethod
    def get_display_name(cls) -> str:
        return cls.title or cls.__name__

    @classmethod
    def columns(cls) -> list[str]:
        return [field.column_name for field in cls.fields.values()]

    @classmethod
    def export_columns(cls) -> list[str]:
        return [column for column in cls.columns() if column != DELETE_COLUMN]

    # --- what subclasses implement -------------------------------------------------------
    def prepare(self, rows: list[dict[str, str]]) -> None:
        raise NotImplementedError

    def locate(self, cells: dict[str, str]) -> models.Model:
        raise NotImplementedError

    def assign(self, obj: Any, cells: dict[str, str]) -> None:
        raise NotImplementedError

    def render(self, obj: Any) -> dict[str, object]:
        raise NotImplementedError

    def save(self, obj: Any, changed: set[str]) -> None:
        raise NotImplementedError

    def remove(self, obj: Any) -> None:
        raise NotImplementedError

    def identity(self, cells: dict[str, str]) -> tuple:
        """What makes two rows name the same object (a repeat is refused)."""
        return tuple(cells[column] for column in self.key_columns)

    def export_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        """The export's queryset with what `render` reads joined in."""
        return queryset

    def who(self) -> dict[str, Any]:
        """The keyword arguments every service takes."""
        return {"actor": self.actor, "reason": self.reason, "source": SOURCE}

    # --- import ------------------------------------------------------------------------------
    def file_problems(self, dataset) -> list[str]:
        """Refuse the whole file when its columns are not this resource's."""
        known = self.columns()
        names = [cell_text(header).lower() for header in dataset.headers or []]
        problems = [
            f"Unknown column {name!r}: the columns are {', '.join(known)}."
            for name in names
            if name and name not in known
        ]
        problems += [
            f"The column {name!r} appears twice." for name in set(names) if name and names.count(name) > 1
        ]
        problems += [
            f"The file needs a column {column!r}." for column in self.key_columns if column not in names
        ]
        problems += [
            f"Line {line} has more cells than the first line names columns (a comma not in quotes?)."
            for line in getattr(dataset, "too_wide", [])
        ]
        return problems

    def import_data_inner(
        self, dataset, dry_run, raise_errors, using_transactions, collect_failed_rows, **kwargs
    ):
        """import-export's loop, without its savepoint per row: a row writes only through
        its service, which has its own; and the file is refused as a whole when its columns
        are wrong."""
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = len(dataset)
        problems = self.file_problems(dataset)
        for problem in problems:
            result.append_base_error(self.get_error_result_class()(ValidationError(problem)))
        if problems:
            return result
        given = self.reason
        if dry_run:  # a preview is made and rolled back: its writes need a reason too
            self.reason = normalize_reason(given) or PREVIEW_REASON
        try:
            with revisions.coalesced():
                return self._import_all(result, dataset, **kwargs)
        finally:
            self.reason = given

    def _import_all(self, result: ImportResult, dataset, **kwargs) -> ImportResult:
        self.before_import(dataset, **kwargs)
        if connection.vendor == "postgresql":  # bulk writes speak PostgreSQL (COPY)
            try:
                with transaction.atomic():
                    return self._import_rows(result, BulkRun())
            except DatabaseError:
                logger.warning("An import could not be written in bulk: running it row by row")
                result = self.get_result_class()()
                result.diff_headers, result.total_rows = self.get_diff_headers(), len(dataset)
                self.before_import(dataset, **kwargs)  # the objects afresh
        return self._import_rows(result, None)

    def _import_rows(self, result: ImportResult, run: BulkRun | None) -> ImportResult:
        for number, cells in enumerate(self._cells, 1):
            row_result = self.import_row(cells, None, row_number=number, run=run)
            result.increment_row_result_total(row_result)
            if row_result.errors:
                result.append_error_row(number, cells, row_result.errors)
            elif row_result.validation_error:
                result.append_invalid_row(number, cells, row_result.validation_error)
            result.append_row_result(row_result)
        if run is not None:
            run.flush()
        return result

    def before_import(self, dataset, **kwargs):
        names = [cell_text(header).lower() for header in dataset.headers]
        self.present = [name for name in names if name and name != DELETE_COLUMN]
        self._cells = [
            {name: unquote_cell(cell_text(value)) for name, value in zip(names, values, strict=False) if name}
            for values in dataset
        ]
        self._seen = {}
        self.prepare([cells for cells in self._cells if any(cells.values())])

    def import_row(self, row, instance_loader, **kwargs):
        number = kwargs["row_number"]
        result = self.get_row_result_class()(line=number + 1)
        cells = self._cells[number - 1]
        if not any(cells.values()):
            result.import_type, result.blank = RowResult.IMPORT_TYPE_SKIP, True
            return result
        result.label = " / ".join(cells.get(column, "") for column in self.key_columns if cells.get(column))
        try:
            self._import_cells(result, cells, kwargs["run"])
        except PermissionDenied as error:
            self._refuse(result, [str(error) or "You may not make this change."])
        except ValidationError as error:
            self._refuse(result, self._messages(error))
        except Exception as error:  # a bug or a database error: refuse the row, say what
            logger.exception("Import line %s failed", result.line)
            result.import_type = RowResult.IMPORT_TYPE_ERROR
            result.reasons = [f"Unexpected error: {error}"]
            result.errors.append(self.get_error_result_class()(error, row=row, number=number))
        return result

    def _import_cells(self, result: ImportRow, cells: dict[str, str], run: BulkRun | None) -> None:
        for column in self.key_columns:
            if column not in self.optional_keys and not cells.get(column):
                raise ValidationError({column: "This cell may not be empty."})
        identity = self.identity(cells)
        if identity in self._seen:
            raise ValidationError(
                f"Line {self._seen[identity]} already names the same object: keep one of them."
            )
        self._seen[identity] = result.line
        obj = self.locate(cells)
        new = obj.pk is None
        before = {} if new else self._texts(obj)
        if self.deletable and parse_bool(cells.get(DELETE_COLUMN, ""), DELETE_COLUMN):
            if new:  # nothing to remove
                result.import_type = RowResult.IMPORT_TYPE_SKIP
                return
            result.changes = [(column, before[column], "") for column in self.export_columns()]
            result.import_type = RowResult.IMPORT_TYPE_DELETE
            result.add_instance_info(obj)
            _write(run, lambda: self.remove(obj), alone=True)
            return
        self.assign(obj, cells)
        # The model's normalisations (sorted levels, canonical values) before comparing; if it
        # refuses the values, validation says so below in the same words.
        with contextlib.suppress(ValidationError):
            obj.clean()
        after = self._texts(obj)
        result.changes = [
            (column, before.get(column, ""), after[column])
            for column in self.export_columns()
            if column in self.present and (new or before[column] != after[column])
        ]
        if not new and not result.changes:
            result.import_type = RowResult.IMPORT_TYPE_SKIP
            return
        result.import_type = RowResult.IMPORT_TYPE_NEW if new else RowResult.IMPORT_TYPE_UPDATE
        changed = {column for column, _, _ in result.changes}
        _write(run, lambda: self.save(obj, changed))
        result.add_instance_info(obj)

    def _texts(self, obj: Any) -> dict[str, str]:
        return {column: cell_text(value) for column, value in self.render(obj).items()}

    def _refuse(self, result: ImportRow, reasons: list[str]) -> None:
        result.import_type = RowResult.IMPORT_TYPE_INVALID
        result.reasons = reasons
        result.validation_error = ValidationError(reasons)

    def _messages(self, error: ValidationError) -> list[str]:
        if not hasattr(error, "error_dict"):
            return list(error.messages)
        return [
            message if field == NON_FIELD_ERRORS else f"{self.field_columns.get(field, field)}: {message}"
            for field, errors in error.message_dict.items()
            for message in errors
        ]

    @classmethod
    def get_row_result_class(cls):
        return ImportRow

    @classmethod
    def get_result_class(cls):
        return ImportResult

    def get_diff_headers(self):
        return self.columns()

    # --- export ------------------------------------------------------------------------------
    def get_queryset(self) -> models.QuerySet:
        return self._meta.model.objects.all()

    def get_export_order(self):
        return tuple(name for name, field in self.fields.items() if field.column_name != DELETE_COLUMN)

    def filter_export(self, queryset, **kwargs):
        """The admin's changelist queryset (its filters and search, its order), or the
        children of the parents it lists (entitlements of the listed items)."""
        model = self._meta.model
        if queryset.model is not model:
            lookup_name = self.parents[queryset.model]
            queryset = model.objects.filter(**{lookup_name: queryset.order_by().values("pk")})
        queryset = self.export_queryset(queryset)
        if not queryset.query.order_by:
            queryset = queryset.order_by(*(model._meta.ordering or ["pk"]))
        return queryset

    def export_resource(self, instance, selected_fields=None, **kwargs):
        values = self.render(instance)
        return [safe_cell(values[field.column_name]) for field in self.get_export_fields(selected_fields)]


def _write(run: BulkRun | None, write: Callable[[], None], *, alone: bool = False) -> None:
    """Make one row's write in `run`; on its own (after the run's writes so far are written)
    when there is no run, the run cannot take it, or it is `alone`."""
    if run is not None and not alone:
        try:
            with run.write():
                write()
        except NotHeld:
            pass
        else:
            return
    if run is not None:
        run.flush()
    write()
