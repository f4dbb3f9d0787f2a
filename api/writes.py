"""Helpers for create-or-replace writes: a PUT that changes nothing writes nothing.

Services record no history for an unchanged save, but they do move cache revisions, and
some field types (a country list) compare unequal to their own stored form. So a view
compares the object before and after applying the body, in the database's terms, and when
nothing differs it only checks the permission the service would have checked.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


def stored_values(instance: models.Model) -> dict[str, Any]:
    """Each concrete field's value as the database would store it."""
    return {
        field.attname: field.get_prep_value(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
    }


def is_noop(instance: models.Model, before: dict[str, Any] | None) -> bool:
    """True when `instance` (loaded, then given the body's values) would store exactly what
    it stored before. The model's `clean()` runs first, for its normalisations (sorted
    levels, canonical values); if it refuses the values, this is no no-op: the service will
    say why."""
    if before is None:
        return False
    try:
        instance.clean()
    except ValidationError:
        return False
    return stored_values(instance) == before


def assign(instance: models.Model, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(instance, name, value)
