"""What value a feature may be given. Entitlements and targeting rules pick one of the
feature's levels (`clean_value`); an override's grant is a negotiated exception that only has
to fit the feature's kind (`clean_grant_value`). A metered feature's value is its usage limit
per period, any whole number from 0 (or unlimited where allowed), on every path."""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ValidationError

UNLIMITED = "unlimited"
# The largest whole number a grant may carry: what a 32-bit signed integer holds, as the API's
# integer fields and every consumer of the check answers can.
LARGEST_WHOLE_NUMBER = 2**31 - 1


class FeatureShape(Protocol):
    """What these rules read of the feature they are given: a catalog `Feature`, or anything
    with its value fields."""

    @property
    def key(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def levels(self) -> Any: ...

    @property
    def min_value(self) -> int | None: ...

    @property
    def max_value(self) -> int | None: ...

    @property
    def allow_unlimited(self) -> bool: ...


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


def value_hint(feature: FeatureShape) -> str:
    """What value of `feature` a plan, add-on or targeting rule may give, as a sentence."""
    if feature.kind == "switch":
        return f"{feature.key} is a switch: type on."
    if feature.kind == "range":
        return f"Give {feature.key} a whole number from {feature.min_value} to {feature.max_value}."
    if feature.kind == "metered":
        unlimited = ", or unlimited" if feature.allow_unlimited else ""
        return f"{feature.key}'s limit per period: a whole number, 0 or more{unlimited}."
    levels = ", ".join(str(level) for level in feature.levels or [])
    extra = ", or unlimited" if feature.kind == "quantity" and feature.allow_unlimited else ""
    return f"Choose a level of {feature.key}: {levels}{extra}."


def clean_value(feature: FeatureShape, value: object) -> object:
    """Return `value` in its canonical form for `feature`, or raise ValidationError saying
    what would fit: `true` for a switch, one of the levels (or "unlimited" where allowed) for
    a quantity, a whole number within bounds for a range, one of the levels for a custom."""
    kind = feature.kind
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(value_hint(feature))
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
    if kind == "metered":
        return _limit(feature, value)
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


def clean_grant_value(feature: FeatureShape, value: object) -> object:
    """Return an override grant's value in canonical form, or raise ValidationError. A grant
    fits the feature's kind but not necessarily its levels: a quantity takes any whole number
    from 0 up (or "unlimited" where allowed), a range stays within its bounds, a custom takes
    one of its levels, a switch is on."""
    kind = feature.kind
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"A grant needs a value: {_grant_hint(feature)}")
    if kind == "switch":
        if value is True or (isinstance(value, str) and value.strip().lower() in {"true", "on"}):
            return True
        raise ValidationError(f"{feature.key} is a switch: a grant turns it on (type on).")
    if kind in ("quantity", "metered"):
        return _limit(feature, value)
    if kind == "range":
        number = _whole_number(value)
        if number is None:
            raise ValidationError(f"{_shown(value)} is not a whole number: {_grant_hint(feature)}")
        low, high = feature.min_value, feature.max_value
        if low is None or high is None or not (low <= number <= high):
            raise ValidationError(f"{number} is outside {feature.key}'s range: {_grant_hint(feature)}")
        return number
    if kind == "custom":
        levels = list(feature.levels or [])
        if not isinstance(value, str) or value.strip() not in levels:
            raise ValidationError(f"{_shown(value)} is not a level of {feature.key}: {_grant_hint(feature)}")
        return value.strip()
    raise ValidationError(f"Unknown feature kind {kind!r}.")


def _limit(feature: FeatureShape, value: object) -> object:
    """A whole number from 0 up to LARGEST_WHOLE_NUMBER, or "unlimited" where allowed."""
    if isinstance(value, str) and value.strip().lower() == UNLIMITED:
        if not feature.allow_unlimited:
            raise ValidationError(f"{feature.key} does not allow unlimited: give a whole number.")
        return UNLIMITED
    number = _whole_number(value)
    if number is None:
        raise ValidationError(f"{_shown(value)} is not a whole number: {_grant_hint(feature)}")
    if number < 0:
        raise ValidationError(f"{number} is below zero: {_grant_hint(feature)}")
    if number > LARGEST_WHOLE_NUMBER:
        raise ValidationError(f"{number} is too large: at most {LARGEST_WHOLE_NUMBER:,} may be granted.")
    return number


def _grant_hint(feature: FeatureShape) -> str:
    """What a grant of `feature` may be, in words."""
    if feature.kind == "switch":
        return "type on."
    if feature.kind in ("quantity", "metered"):
        return "give a whole number, 0 or more" + (", or unlimited." if feature.allow_unlimited else ".")
    if feature.kind == "range":
        return f"give a whole number from {feature.min_value} to {feature.max_value}."
    return f"choose one of: {', '.join(str(level) for level in feature.levels or [])}."


def _shown(value: object) -> str:
    """A refused value as the user typed it: `abc`, not `'abc'`."""
    return f"“{value}”" if isinstance(value, str) else display_value(value)


def display_value(value: object) -> str:
    """How a stored value reads in the admin."""
    if value is True:
        return "on"
    if value is None:
        return "—"
    return str(value)
