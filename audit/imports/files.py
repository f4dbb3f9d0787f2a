"""Running an import or an export: a file's bytes read in its format (CSV, XLSX), previewed
or applied through a resource (`run_import`), and the cores of the `bulk_import` and
`bulk_export` commands."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import tablib
from django.db import transaction
from django.utils.module_loading import import_string
from import_export.formats import base_formats

from audit.imports.resources import ImportResult, ServiceResource
from toolkit import revisions
from toolkit.change_context import ChangeReasonRequired, normalize_reason, request_scope

if TYPE_CHECKING:
    from django.contrib.auth.models import User

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


def resource_for(kind: str) -> type[ServiceResource]:
    try:
        return import_string(KINDS[kind])
    except KeyError:
        raise ValueError(f"Unknown kind {kind!r}: choose one of {', '.join(KINDS)}.") from None


def run_import(
    resource: ServiceResource,
    dataset,
    *,
    apply: bool,
    expected_digest: str | None = None,
    file_name: str | None = None,
    request_id: uuid.UUID | None = None,
) -> ImportResult:
    """Preview the file (`apply=False`: every row made through the services, then rolled back)
    or apply it through the services in one transaction, committed only when no row is refused and, when
    `expected_digest` is given, the changes are exactly those of the confirmed preview. Every
    row's history shares the reason and one request id (`request_id`, or a new one)."""
    if apply and not normalize_reason(resource.reason):
        raise ChangeReasonRequired("Say why these changes are made: an import needs a reason.")
    with request_scope(request_id) as scope, transaction.atomic(), revisions.coalesced():
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
