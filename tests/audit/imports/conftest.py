"""Helpers for the import tests: files are built as a person would type them (CSV text) or
exported by the resources themselves, and imported through `audit.imports.files.run_import`, the
core shared by the admin and the `bulk_import` command."""

from __future__ import annotations

from django.contrib.auth.models import User

from audit.imports.files import FORMATS, read_dataset, resource_for, run_import
from audit.imports.resources import ImportResult
from catalog.models import Entitlement

CSV, XLSX = FORMATS
REASON = "Ticket OPS-42: spring price list"


def import_text(
    kind: str, text: str, *, user: User, apply: bool = False, reason: str = REASON
) -> ImportResult:
    """Import CSV `text` (leading indentation and blank edges removed) as `user`."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return import_bytes(kind, "\n".join(lines).encode(), user=user, apply=apply, reason=reason)


def import_bytes(
    kind: str, data: bytes, *, user: User, apply: bool = False, reason: str = REASON, file_format=CSV
) -> ImportResult:
    resource = resource_for(kind)(actor=user, reason=reason)
    return run_import(resource, read_dataset(data, file_format), apply=apply)


def export_bytes(kind: str, file_format=CSV) -> bytes:
    """Everything of `kind`, exported as the admin exports it."""
    dataset = resource_for(kind)().export()
    data = file_format().export_data(dataset)
    return data if isinstance(data, bytes) else data.encode()


def value_of(item: str, feature: str):
    """The value `item` gives `feature`, as stored."""
    return Entitlement.objects.get(item__key=item, feature__key=feature).value
