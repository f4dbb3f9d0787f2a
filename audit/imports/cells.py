"""Cells of an imported or exported file: what a spreadsheet cell holds, as text, and back.
Each parser names the column it reads in the ValidationError it raises."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import dateparse, timezone


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
