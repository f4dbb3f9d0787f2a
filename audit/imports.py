"""Bulk import and export (CSV, XLSX) of the domain, with a preview, one reason and all rows
or none. Shared by the admin and the `bulk_import` / `bulk_export` commands.

django-import-export reads and writes the files and drives the admin pages; its save path is
not used. A `ServiceResource` turns each row into a call to the same service a form or an
API write makes (`catalog.services`, `subscriptions.services`, `segments.services`), so each
row is checked, validated and recorded exactly like them, with source "import".

- Columns use the API's keys (feature and item keys, customer and subscription external
  ids), never database ids. A row names one object by its key columns; the other columns
  present in the file are set, columns absent from the file are left as they are.
- A preview writes nothing: each row is checked as its service checks it (the same permission
  functions, the model's full validation) and shown as created, changed (old → new),
  unchanged or refused, with the reason. Applying runs the file again through the services,
  in one transaction, recorded with the reason given on confirmation and one request id;
  any refused row rolls back every row, and so does an outcome other than the confirmed
  preview's (someone changed the same objects meanwhile): the new preview is shown instead.
- An unchanged row writes nothing, so it needs no permission: an exported file edited in a
  few rows can be imported back by whoever may change those rows.
- Each row costs a constant number of queries: a resource loads every object the file names
  in a few queries first (`prepare`), then each row costs what its service costs.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, ClassVar

import tablib
from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import dateparse, timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.module_loading import import_string
from django.views.decorators.http import require_POST
from import_export import forms as import_export_forms
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats
from import_export.instance_loaders import BaseInstanceLoader
from import_export.resources import Resource
from import_export.results import Result, RowResult
from import_export.tmp_storages import CacheStorage
from unfold.contrib.import_export.forms import ImportForm, SelectableFieldsExportForm

from audit.admin_base import REASON_FIELD, AuditedModelForm, reason_field
from audit.context import ChangeReasonRequired, normalize_reason, request_scope
from catalog import revisions
from toolkit.spreadsheet import safe_cell, unquote_cell

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

SOURCE = "import"
DELETE_COLUMN = "delete"

# What `bulk_import` and `bulk_export` accept, and the resource that handles each kind.
KINDS = {
    "features": "catalog.resources.FeatureResource",
    "items": "catalog.resources.ItemResource",
    "entitlements": "catalog.resources.EntitlementResource",
    "customers": "subscriptions.resources.CustomerResource",
    "subscriptions": "subscriptions.resources.SubscriptionResource",
    "overrides": "subscriptions.resources.OverrideResource",
    "segment-lists": "segments.resources.SegmentListResource",
}


# --- cells: what a spreadsheet holds, as text, and back --------------------------------------


def cell_text(value: object) -> str:
    """A cell as text: CSV cells are text already; XLSX cells may be numbers, booleans or
    dates (a date without a zone is taken as UTC when parsed)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def parse_bool(text: str, column: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on", "x"):
        return True
    if lowered in ("", "false", "no", "0", "off"):
        return False
    raise ValidationError({column: f"Write true or false, not {text!r}."})


def parse_int(text: str, column: str) -> int | None:
    """A whole number, or None for an empty cell."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationError({column: f"{text!r} is not a whole number."}) from None


def parse_datetime(text: str, column: str) -> datetime | None:
    """ISO 8601 (`2030-06-06T00:00:00Z`), or a date alone (midnight); no zone means UTC."""
    if not text:
        return None
    try:
        moment = dateparse.parse_datetime(text)
        if moment is None and (day := dateparse.parse_date(text)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({column: f"{text!r} is not a date and time; write e.g. 2030-06-06T00:00:00Z."})
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


def render_datetime(moment: datetime | None) -> str:
    """ISO 8601 in UTC, as the API writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else ""


def parse_json(text: str, column: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValidationError({column: f"Not valid JSON: {error}."}) from None


def render_bool(value: bool) -> str:
    return "true" if value else "false"


def split_list(text: str) -> list[str]:
    """`a, b; c` → ["a", "b", "c"]: keys never hold commas or semicolons."""
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def lookup(found: dict[str, models.Model], key: str, column: str, what: str) -> Any:
    """The object the file names by `key`, loaded beforehand, or a refusal naming the column."""
    try:
        return found[key]
    except KeyError:
        raise ValidationError({column: f"There is no {what} {key!r}."}) from None


def prefetch_object_permissions(actor: User | None, perm: str, objects: models.QuerySet) -> None:
    """Load `actor`'s object permissions on `objects` in two queries, so the services' checks
    of each row cost none (guardian's prefetch_perms)."""
    from catalog import permissions

    if actor is not None and not permissions.has(actor, perm):
        permissions.checker(actor).prefetch_perms(objects)


class CSV(base_formats.CSV):
    """CSV read with the csv module as it is: blank lines are kept, so that a row's line is
    its line in the file, and a row with more cells than the first line names makes the file
    refused with its line (tablib would drop the first and fail on the second). Written as
    UTF-8 with a byte order mark, and served saying so."""

    CONTENT_TYPE = "text/csv; charset=utf-8"

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            in_stream = in_stream.decode(self.encoding or "utf-8-sig")
        rows = list(csv.reader(io.StringIO(in_stream)))
        dataset = tablib.Dataset()
        dataset.too_wide = []
        if not rows:
            return dataset
        dataset.headers = rows[0]
        width = len(rows[0])
        for line, row in enumerate(rows[1:], 2):
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                dataset.too_wide.append(line)
            dataset.append((row + [""] * width)[:width])
        return dataset


FORMATS = [CSV, base_formats.XLSX]


# --- results -----------------------------------------------------------------------------------


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


# --- resources -------------------------------------------------------------------------------


class ServiceResource(Resource):
    """A resource whose rows are written by the services, one row at a time.

    Subclasses declare their columns as `Field()`s and implement:
    - `prepare(rows)`: load every object the rows name, in a constant number of queries;
    - `locate(cells)`: the object a row names (from what was loaded), or a new unsaved one;
    - `assign(obj, cells)`: set the columns present in the file (`self.present`) on it,
      raising ValidationError for a cell that cannot be read;
    - `render(obj)`: the object's columns, as exported (and compared, for old → new);
    - `save(obj, changed)` and, if deletable, `remove(obj)`: call the service;
    - `check(obj, changed)` and `check_remove(obj)`: the permission checks those services
      make, for the preview.

    A preview does not write: each row is checked as its service would check it (the same
    permission functions, the model's full validation) in a few queries, so that a 10,000-row
    file previews in seconds. Applying calls the services, which check everything again; any
    refusal there, or any outcome other than the preview's, rolls every row back.
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

    def check(self, obj: Any, changed: set[str]) -> None:
        raise NotImplementedError

    def save(self, obj: Any, changed: set[str]) -> None:
        raise NotImplementedError

    def check_remove(self, obj: Any) -> None:
        raise NotImplementedError

    def remove(self, obj: Any) -> None:
        raise NotImplementedError

    def identity(self, cells: dict[str, str]) -> tuple:
        """What makes two rows name the same object (a repeat is refused)."""
        return tuple(cells[column] for column in self.key_columns)

    def validate(self, obj: models.Model) -> None:
        """The model's full validation, as the service runs it, except re-reading the related
        objects `prepare` has just loaded (a query per row and relation) and the uniqueness
        checks over them, which `prepare` (is the object there?) and the repeat check answer."""
        loaded = [
            field.name
            for field in obj._meta.concrete_fields
            if field.is_relation and getattr(obj, field.attname) is not None and field.is_cached(obj)
        ]
        obj.full_clean(exclude=loaded)

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
        self.before_import(dataset, **kwargs)
        for number, cells in enumerate(self._cells, 1):
            row_result = self.import_row(cells, None, dry_run=dry_run, row_number=number)
            result.increment_row_result_total(row_result)
            if row_result.errors:
                result.append_error_row(number, cells, row_result.errors)
            elif row_result.validation_error:
                result.append_invalid_row(number, cells, row_result.validation_error)
            result.append_row_result(row_result)
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
            self._import_cells(result, cells, apply=not kwargs.get("dry_run"))
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

    def _import_cells(self, result: ImportRow, cells: dict[str, str], *, apply: bool) -> None:
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
            if apply:
                self.remove(obj)
            else:
                self.check_remove(obj)
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
        if apply:
            self.save(obj, changed)
        else:
            self.check(obj, changed)
            self.validate(obj)
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


def resource_for(kind: str) -> type[ServiceResource]:
    try:
        return import_string(KINDS[kind])
    except KeyError:
        raise ValueError(f"Unknown kind {kind!r}: choose one of {', '.join(KINDS)}.") from None


# --- running an import -----------------------------------------------------------------------


def run_import(
    resource: ServiceResource,
    dataset,
    *,
    apply: bool,
    expected_digest: str | None = None,
    file_name: str | None = None,
    request_id: uuid.UUID | None = None,
) -> ImportResult:
    """Preview the file (`apply=False`: every row checked, nothing written) or apply it through
    the services in one transaction, committed only when no row is refused and, when
    `expected_digest` is given, the changes are exactly those of the confirmed preview. Every
    row's history shares the reason and one request id (`request_id`, or a new one)."""
    if apply and not normalize_reason(resource.reason):
        raise ChangeReasonRequired("Say why these changes are made: an import needs a reason.")
    with request_scope(request_id) as scope, transaction.atomic(), revisions.catalog_changes_once():
        result = resource.import_data(
            dataset,
            dry_run=not apply,
            raise_errors=False,
            use_transactions=True,
            rollback_on_validation_errors=True,
            file_name=file_name,
            user=resource.actor,
        )
        if apply and result.is_clean:
            result.stale = expected_digest is not None and expected_digest != result.digest
            result.applied = not result.stale
        if not result.applied:
            transaction.set_rollback(True)
    result.request_id = scope
    return result


def import_file(
    kind: str,
    data: bytes,
    *,
    file_name: str,
    actor: User,
    reason: str = "",
    apply: bool,
    format_name: str | None = None,
) -> ImportResult:
    """The core of `manage.py bulk_import`: preview or apply a file of `kind` as `actor`."""
    file_format = format_for(file_name, format_name)
    resource = resource_for(kind)(actor=actor, reason=reason)
    try:
        dataset = read_dataset(data, file_format)
    except Exception as error:  # whatever the reader chokes on: say so, never a traceback
        raise ValueError(f"{file_name} cannot be read as {file_format().get_title()}: {error!r}.") from error
    return run_import(resource, dataset, apply=apply, file_name=file_name)


def export_file(kind: str, *, format_name: str = "csv") -> bytes:
    """The core of `manage.py bulk_export`: every object of `kind`, as the admin exports it."""
    file_format = format_for("", format_name)()
    data = file_format.export_data(resource_for(kind)().export())
    return data if isinstance(data, bytes) else data.encode("utf-8-sig")


def read_dataset(data: bytes, file_format: type[base_formats.Format]):
    """A tablib dataset from a file's bytes (CSV may start with a byte order mark)."""
    fmt = file_format(encoding="utf-8-sig") if not file_format().is_binary() else file_format()
    return fmt.create_dataset(data)


def format_for(file_name: str, name: str | None = None) -> type[base_formats.Format]:
    """The format named (`csv`, `xlsx`) or, failing that, the file's extension."""
    wanted = (name or file_name.rsplit(".", 1)[-1]).lower()
    for file_format in FORMATS:
        if file_format().get_extension() == wanted:
            return file_format
    raise ValueError(f"Unknown format {wanted!r}: use csv or xlsx.")


# --- admin -------------------------------------------------------------------------------------


class ConfirmImportForm(import_export_forms.ConfirmImportForm):
    """Confirming a preview: the fingerprint of what it showed, and why."""

    preview_digest = forms.CharField(widget=forms.HiddenInput())
    change_reason = reason_field()

    clean_change_reason = AuditedModelForm.clean_change_reason


class AuditedImportExportMixin(ImportExportMixin):
    """Import and export for an audited model admin: put it before `AuditedModelAdmin` and
    set `resource_classes` to `ServiceResource`s. Imports show a preview and apply only on
    confirmation with a reason; exports follow the changelist's filters and search."""

    formats = FORMATS
    import_form_class = ImportForm
    export_form_class = SelectableFieldsExportForm
    confirm_form_class = ConfirmImportForm
    import_template_name = "admin/audit/import.html"
    # The upload waits in the cache between preview and confirmation: any web process may
    # answer the confirmation (no state on the machine that showed the preview).
    tmp_storage_class = CacheStorage
    skip_admin_log = True  # the audit log has every row, with its reason
    to_encoding = "utf-8-sig"  # so that spreadsheet programs read the CSV as UTF-8
    preview_limit = 500  # rows listed per section of a preview; the counts cover them all
    # Applying costs what the services cost (a few ms a row): past this many changes, the
    # confirmation suggests `bulk_import`, which no web server timeout interrupts.
    large_import = 5000

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) or self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_or_change_permission(request)

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"actor": request.user}

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        if isinstance(response, TemplateResponse):
            context = response.context_data
            result, confirm_form = context.get("result"), context.get("confirm_form")
            if confirm_form is not None:
                if result.changes:
                    confirm_form.initial["preview_digest"] = result.digest
                else:
                    context["confirm_form"] = None  # nothing to apply
            context.update(self._preview_context(request))
        return response

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """Apply a confirmed preview: all rows in one transaction with the given reason, or
        nothing (a refused row, or an outcome other than the preview's, shows it again)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        import_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import")
        confirm_form = self.create_confirm_form(request)
        confirm_form.is_valid()
        if set(confirm_form.errors) - {REASON_FIELD}:
            messages.error(request, "The import form was incomplete: upload the file again.")
            return HttpResponseRedirect(import_url)
        data = confirm_form.cleaned_data
        try:
            file_format = self.get_import_formats()[int(data["format"])]
            resource_class = self.choose_import_resource_class(confirm_form, request)
        except (IndexError, ValueError):
            messages.error(request, "The import form was incomplete: upload the file again.")
            return HttpResponseRedirect(import_url)
        storage = self.get_tmp_storage_class()(
            name=data["import_file_name"],
            encoding=None if file_format().is_binary() else self.from_encoding,
            read_mode=file_format().get_read_mode(),
        )
        content = storage.read()
        if content is None:
            messages.error(request, "The uploaded file is no longer kept: upload it again.")
            return HttpResponseRedirect(import_url)
        dataset = read_dataset(content if isinstance(content, bytes) else content.encode(), file_format)
        resource = resource_class(**self.get_import_resource_kwargs(request, form=confirm_form))
        if confirm_form.errors:  # no reason given: show the preview again, with the error
            result = run_import(resource, dataset, apply=False, file_name=data["original_file_name"])
            return self._render_preview(request, result, confirm_form)
        resource.reason = data[REASON_FIELD]
        result = run_import(
            resource,
            dataset,
            apply=True,
            expected_digest=data["preview_digest"],
            file_name=data["original_file_name"],
            request_id=getattr(request, "request_id", None),
        )
        if not result.applied:
            if result.stale:
                messages.warning(
                    request,
                    "The data changed since the preview: nothing was applied. Review the new preview.",
                )
            else:
                messages.error(request, "Nothing was imported: some rows are refused.")
            again = None
            if result.is_clean:  # the new preview may be confirmed in its turn
                again = self.get_confirm_form_class(request)(
                    initial={**confirm_form.cleaned_data, "preview_digest": result.digest}
                )
            return self._render_preview(request, result, again)
        storage.remove()
        audit_log = reverse("admin:audit_auditentry_changelist") + f"?request_id={result.request_id}"
        messages.success(
            request,
            format_html(
                'Imported {}: {}. <a href="{}" class="underline">See the changes in the audit log</a>.',
                data["original_file_name"],
                result.summary,
                audit_log,
            ),
        )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def _render_preview(self, request, result: ImportResult, confirm_form) -> TemplateResponse:
        """The preview page again, after a confirmation that could not be applied."""
        form = None
        if confirm_form is None:  # refused rows: offer to upload a corrected file
            form = self.get_import_form_class(request)(
                self.get_import_formats(), self.get_import_resource_classes(request)
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import",
            "opts": self.model._meta,
            "result": result,
            "confirm_form": confirm_form,
            "form": form,
            "media": self.media + (form.media if form else forms.Media()),
            **self._preview_context(request),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def _preview_context(self, request) -> dict[str, Any]:
        return {
            "preview_limit": self.preview_limit,
            "preview_slice": f":{self.preview_limit}",
            "preview_negative": -self.preview_limit,
            "large_import": self.large_import,
            "column_help": [
                (resource.get_display_name(), list(resource.column_help.items()))
                for resource in self.get_import_resource_classes(request)
            ],
        }


def describe(result: ImportResult) -> Iterable[str]:
    """A preview or an apply as lines of text (for the command)."""
    for problem in result.problems:
        yield f"file: {problem}"
    for row in result.lines:
        if row.refused:
            yield f"line {row.line}: refused {row.label}: {'; '.join(row.reasons)}"
        elif not row.is_skip():
            changes = "; ".join(
                f"{column}: {new}" if row.is_new() else f"{column}: {old or '∅'} → {new or '∅'}"
                for column, old, new in row.changes
            )
            yield f"line {row.line}: {row.status.lower()} {row.label}: {changes}"
