"""`manage.py create_api_key NAME --user USERNAME --scope read|write`: make a key and print
it as the last line of the output (only its hash is stored; it cannot be shown again)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from api import services
from api.models import APIKey


class Command(BaseCommand):
    help = "Create an API key for a user and print it (last line). Only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. billing-sync (50 characters at most).")
        parser.add_argument("--user", required=True, help="The username the key acts as.")
        parser.add_argument("--scope", required=True, choices=APIKey.Scope.values)
        parser.add_argument("--expires", help="ISO 8601 date and time after which the key stops working.")
        parser.add_argument(
            "--rate-limit", type=int, help="Requests per minute (default: API_RATE_PER_MINUTE)."
        )

    def handle(
        self, *args, name: str, user: str, scope: str, expires: str | None, rate_limit: int | None, **options
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
        try:
            api_key, raw_key = services.api_key_create(
                name=name, owner=owner, scope=scope, expires=expiry, rate_limit=rate_limit
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Created {scope} key {api_key.prefix}… ({name}) acting as {owner.username}.")
        self.stdout.write("Store it now: only its hash is kept, it cannot be shown again.")
        self.stdout.write(raw_key)
