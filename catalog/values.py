"""What value a feature may be given: the one rule shared by entitlements, overrides and
targeting rules (DESIGN §1, Entitlement)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from catalog.models import Feature

UNLIMITED = "unlimited"


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def clean_value(feature: Feature, value: object) -> object:
    """Return `value` in its canonical form for `feature`, or raise ValidationError saying
    what would fit: `true` for a switch, one of the levels (or "unlimited" where allowed) for
    a quantity, a whole number within bounds for a range, one of the levels for a custom."""
    kind = feature.kind
    if kind == "switch":
        if value is True or (isinstance(value, str) and value.strip().lower() in {"true", "on"}):
            return True
        raise ValidationError(f"{feature.key} is a switch: its value can only be true.")
    if kind == "quantity":
        if isinstance(value, str) and value.strip().lower() == UNLIMITED:
            if not feature.allow_unlimited:
                raise ValidationError(f"{feature.key} does not allow unlimited.")
            return UNLIMITED
        number = _whole_number(value)
        levels = list(feature.levels or [])
        if number is None or number not in levels:
            allowed = ", ".join(str(level) for level in levels)
            if feature.allow_unlimited:
                allowed += ", unlimited"
            raise ValidationError(f"{value!r} is not a level of {feature.key}; choose one of: {allowed}.")
        return number
    if kind == "range":
        number = _whole_number(value)
        if number is None:
            raise ValidationError(f"{feature.key} takes a whole number; {value!r} is not one.")
        if not (feature.min_value <= number <= feature.max_value):
            raise ValidationError(
                f"{number} is outside {feature.key}'s range {feature.min_value}–{feature.max_value}."
            )
        return number
    if kind == "custom":
        levels = list(feature.levels or [])
        if not isinstance(value, str) or value.strip() not in levels:
            raise ValidationError(
                f"{value!r} is not a level of {feature.key}; choose one of: {', '.join(levels)}."
            )
        return value.strip()
    raise ValidationError(f"Unknown feature kind {kind!r}.")


def display_value(value: object) -> str:
    """How a stored value reads in the admin."""
    if value is True:
        return "on"
    if value is None:
        return "—"
    return str(value)
