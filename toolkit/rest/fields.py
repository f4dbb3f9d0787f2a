"""Serializer fields that take JSON as it is: no string for a number, no 1 for true, no
number for a text. A wrong type is a 400 that names the field (DRF's own fields coerce)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from toolkit.bounds import LATEST_DATE, TOO_LATE

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a text."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSlugField(serializers.SlugField):
    default_error_messages = {"invalid": "Enter a slug: letters, digits, hyphens and underscores."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    """A whole JSON number, within the database's integer range unless told otherwise."""

    default_error_messages = {"invalid": "Must be a whole number."}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", INT32_MIN)
        kwargs.setdefault("max_value", INT32_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictDateTimeField(serializers.DateTimeField):
    """An ISO 8601 text; a time without offset is read as UTC.

    Dates from 9000-01-01 00:00 UTC on are refused (400): a date near the calendar's end
    (9999-12-31) overflows as soon as anything is added to it (a plan's grace days, the
    rounding of an epoch), and an answer built from it could not be written. Seven thousand
    years is "for good" for any subscription; an empty date says so plainly."""

    default_error_messages = {
        "out_of_range": "The date is out of range.",
        "too_late": TOO_LATE,
    }

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]")
        try:
            parsed = super().to_internal_value(value).astimezone(UTC)
        except (OverflowError, ValueError):
            self.fail("out_of_range")
        if parsed >= LATEST_DATE:
            self.fail("too_late")
        return parsed

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_naive(value):
            try:
                return value.replace(tzinfo=UTC)
            except (OverflowError, ValueError):
                self.fail("out_of_range")
        return value


def _has_nul(value: object, depth: int = 0) -> bool:
    if depth > 64:
        return True
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    return False


@extend_schema_field(OpenApiTypes.ANY)
class JSONValueField(serializers.Field):
    """Any JSON value, stored as JSON (PostgreSQL refuses NUL characters: refused here)."""

    default_error_messages = {"invalid": "Texts may not contain NUL characters, nor nest deeper than 64."}

    def to_internal_value(self, data):
        if _has_nul(data):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(JSONValueField):
    default_error_messages = {"not_an_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_an_object")
        return super().to_internal_value(data)


class StrictListField(serializers.ListField):
    """A JSON array (DRF's own also takes a form's repeated fields)."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class RelatedKeysField(serializers.Field):
    """Read only: the `key` of each related object (a many-to-many such as tags), sorted."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, manager):
        return sorted(obj.key for obj in manager.all())


@extend_schema_field({"type": "string", "nullable": True})
class RelatedKeyField(serializers.Field):
    """Read only: the `key` of a related object, or null."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return getattr(instance, self.source)

    def to_representation(self, obj):
        return obj.key
