"""`manage.py bulk_import KIND FILE --user USERNAME --reason "..." [--dry-run]`: the admin's
import, for scripts (audit.imports)."""

from __future__ import annotations

import sys
import textwrap

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.imports.files import KINDS, describe, import_file, resource_for
from toolkit.change_context import ChangeReasonRequired


def _kinds_help() -> str:
    lines = []
    for kind in KINDS:
        resource = resource_for(kind)
        columns = f"{kind}: {', '.join(resource.columns())} (named by {', '.join(resource.key_columns)})"
        lines.append(textwrap.fill(columns, width=100, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


class Command(BaseCommand):
    help = """Import a CSV or XLSX file into Entitle, as the admin's import does.

Each row goes through the service a form or an API write uses, with --user's permissions, and
is recorded in history with --reason (source "import", one request id for the whole file).
All rows are applied in one transaction, or none when any row is refused. Prints what each
row changes (old → new) and, for a refused row, its line and why; exits with status 1 if any
row is refused. --dry-run checks every row and writes nothing.

Columns use the API's keys (feature and item keys, customer and subscription external ids).
Columns left out of the file are left unchanged. A true `delete` cell removes the row's
object (entitlements, overrides, segment lists). `manage.py bulk_export KIND` writes a file
of the same shape.

Example:
  manage.py bulk_import entitlements prices.csv --user catalog --dry-run
  manage.py bulk_import entitlements prices.csv --user catalog --reason "CAT-12: 2027 prices"
"""

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, **kwargs
        )
        parser.epilog = "Kinds and their columns:\n" + _kinds_help()
        return parser

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(KINDS), help="What the file holds.")
        parser.add_argument(
            "file", help="A .csv or .xlsx file whose first line names the columns; - for stdin."
        )
        parser.add_argument(
            "--user", required=True, help="The username the import runs as (their permissions)."
        )
        parser.add_argument(
            "--reason", default="", help="Why: recorded with every change (required to apply)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Preview only: check every row, write nothing."
        )
        parser.add_argument(
            "--format", choices=["csv", "xlsx"], help="The file's format (default: its extension)."
        )

    def handle(self, *args, kind, file, user, reason, dry_run, format, **options):
        actor = get_user_model().objects.filter(username=user).first()
        if actor is None or not actor.is_active:
            raise CommandError(f"No active user {user}.")
        if file == "-" and not format:
            raise CommandError("Reading stdin: say its --format.")
        try:
            if file == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(file, "rb") as handle:
                    data = handle.read()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from error
        try:
            result = import_file(
                kind, data, file_name=file, actor=actor, reason=reason, apply=not dry_run, format_name=format
            )
        except ChangeReasonRequired as error:
            raise CommandError(f"{error} Give --reason, or --dry-run to preview.") from error
        except ValueError as error:  # an unknown format, or a file that is not one
            raise CommandError(str(error)) from error
        verbose = options["verbosity"] >= 1
        for line in describe(result):
            if verbose or "refused" in line or line.startswith("file:"):
                self.stdout.write(line)
        if not result.is_clean:
            raise CommandError(f"Nothing was imported: {result.summary}.")
        if dry_run:
            self.stdout.write(f"Dry run, nothing written: {result.summary}.")
        else:
            self.stdout.write(f"Imported: {result.summary} (request id {result.request_id}).")
