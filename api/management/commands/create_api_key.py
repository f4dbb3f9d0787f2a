"""`manage.py create_api_key NAME --user USERNAME --scope read|write [--reason "..."]`: make a
key and print it as the last line of the output (only its hash is stored; it cannot be shown
again). The key is recorded in the audit log, from the shell, with --reason; without one the
reason names the key and its user, which says what was done but not why."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from api import services
from api.models import APIKey
from toolkit.change_context import normalize_reason


class Command(BaseCommand):
    help = (
        "Create an API key for a user and print it (last line). Only its hash is stored. "
        'Say why with --reason (e.g. --reason "OPS-12: billing sync moves to the new cluster"): '
        "it is kept in the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. billing-sync (50 characters at most).")
        parser.add_argument("--user", required=True, help="The username the key acts as.")
        parser.add_argument("--scope", required=True, choices=APIKey.Scope.values)
        parser.add_argument("--expires", help="ISO 8601 date and time after which the key stops working.")
        parser.add_argument(
            "--rate-limit", type=int, help="Requests per minute (default: API_RATE_PER_MINUTE)."
        )
        parser.add_argument(
            "--reason",
            default="",
            help="Why the key is made, kept in the audit log: a ticket, the application it is for. "
            "Default: a sentence naming the key and its user, which does not say why.",
        )

    def handle(
        self,
        *args,
        name: str,
        user: str,
        scope: str,
        expires: str | None,
        rate_limit: int | None,
        reason: str = "",
        **options,
    ):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user}.")
        if not owner.is_active:
            raise CommandError(f"{user} is inactive: a key of theirs would be refused.")
        expiry: datetime | None = None
        if expires:
            expiry = parse_datetime(expires)
            if expiry is None:
                raise CommandError(f"--expires: {expires!r} is not an ISO 8601 date and time.")
            if expiry.tzinfo is None:
                from datetime import UTC

                expiry = expiry.replace(tzinfo=UTC)
        default_reason = f"API key {name} for {owner.username}, created with manage.py create_api_key"
        reason = normalize_reason(reason) or default_reason
        try:
            # Run on the server, by whoever may: no staff account is the author (source "shell").
            api_key, raw_key = services.api_key_create(
                name=name,
                owner=owner,
                scope=scope,
                expires=expiry,
                rate_limit=rate_limit,
                actor=None,
                reason=reason,
                source="shell",
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Created {scope} key {api_key.prefix}… ({name}) acting as {owner.username}.")
        self.stdout.write("Store it now: only its hash is kept, it cannot be shown again.")
        self.stdout.write(raw_key)
