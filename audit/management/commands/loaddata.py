"""`loaddata` with a reason: fixtures write tracked rows, and every tracked write is recorded
with who and why. `manage.py loaddata plans.json --reason "Restore the 2026 price list"
[--user USERNAME]`; without a reason, a fixture holding tracked rows is refused."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.core.management.commands import loaddata

from toolkit.change_context import change_context, normalize_reason


class Command(loaddata.Command):
    help = loaddata.Command.help + " Tracked rows are recorded in history with --reason (and --user)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--reason", default="", help="Why these rows are loaded (kept in history).")
        parser.add_argument("--user", default=None, help="Username the history names as the author.")

    def handle(self, *fixture_labels, reason: str, user: str | None, **options):
        actor = None
        if user is not None:
            try:
                actor = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user {user!r}.") from None
        if not normalize_reason(reason):
            # Rows of untracked models need no reason; a tracked one is refused by history.
            return super().handle(*fixture_labels, **options)
        with change_context(actor=actor, reason=reason, source="shell"):
            return super().handle(*fixture_labels, **options)
