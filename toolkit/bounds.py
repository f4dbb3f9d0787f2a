"""What a stored value may hold so that every later read of it still works.

Two values were accepted once and then broke every read of the row that held them:
- a date near the calendar's end (9999-12-31): anything added to it (a plan's grace days, a
  period) overflows, so answers built from it cannot be computed;
- a JSON number beyond 64 bits: PostgreSQL's jsonb keeps all its digits, but no 64-bit JSON
  writer (orjson) can write it back.
Every write path refuses them: the API's parser and fields, and the models' validators (so the
admin, imports and scheduled changes too).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import ValidationError

# Seven thousand years is "for good" for any subscription; an empty date says so plainly.
LATEST_DATE = datetime(9000, 1, 1, tzinfo=UTC)
TOO_LATE = "Dates must be before 9000-01-01 00:00 UTC; leave the date empty for no end."

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def refuse_far_date(value: datetime | None) -> None:
    """Model validator: a date from 9000-01-01 UTC on is refused."""
    if value is not None and value >= LATEST_DATE:
        raise ValidationError(TOO_LATE, code="too_late")


def out_of_range_number(data: object) -> str | None:
    """Where (e.g. `traits.n`, `rules[0]`) the first number outside the signed 64-bit range
    is in `data`, or None. Floats as large are refused too (jsonb writes 1e300 back as 301
    digits)."""
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            if not (INT64_MIN <= value <= INT64_MAX) or (isinstance(value, float) and abs(value) >= 2**63):
                return where or "the value"
        elif isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    return None


def refuse_huge_numbers(value: object) -> None:
    """Model validator for a JSON field: every number in it fits in signed 64 bits."""
    where = out_of_range_number(value)
    if where is not None:
        raise ValidationError(
            f"The number at {where} is too large: numbers must fit in 64 bits.", code="number_too_large"
        )
