"""`manage.py bulk_export KIND [--output FILE] [--format csv|xlsx]`: every object of a kind,
as the admin exports it; the file imports back with `bulk_import` unchanged."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.imports.files import KINDS, export_file


class Command(BaseCommand):
    help = (
        "Export every feature, item, entitlement, customer, subscription, override or segment list "
        "entry as CSV (to stdout by default) or XLSX, with the columns bulk_import reads."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(KINDS), help="What to export.")
        parser.add_argument("--output", help="The file to write (default: stdout, CSV only).")
        parser.add_argument(
            "--format", choices=["csv", "xlsx"], help="Default: the output's extension, or csv."
        )

    def handle(self, *args, kind, output, format, **options):
        format_name = format or (output.rsplit(".", 1)[-1].lower() if output and "." in output else "csv")
        if format_name not in ("csv", "xlsx"):
            raise CommandError(f"Unknown format {format_name!r}: use csv or xlsx.")
        data = export_file(kind, format_name=format_name)
        if output:
            with open(output, "wb") as handle:
                handle.write(data)
        elif format_name == "xlsx":
            raise CommandError("XLSX is binary: give --output.")
        else:
            self.stdout.write(data.decode("utf-8-sig"), ending="")
