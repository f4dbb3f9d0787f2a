"""Form fields that let non-engineers type values as text: `25`, `unlimited`, `email+chat`,
`5, 10, 20`. The models' clean() turns the text into the canonical value for the feature."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import UnfoldAdminTextInputWidget

from catalog.values import display_value


class ValueField(forms.CharField):
    """A feature value typed as text; an empty box means no value."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", UnfoldAdminTextInputWidget)
        kwargs.setdefault("help_text", "on for a switch, a number, unlimited, or a level's name")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if value is None or value == "":
            return ""
        if isinstance(value, str) and value.startswith('"') and value.endswith('"'):
            value = json.loads(value)  # the JSON model field hands over its raw text
        return "on" if value is True else display_value(value)

    def to_python(self, value):
        text = super().to_python(value)
        return text.strip() or None


def parse_levels(text: str) -> list[object]:
    """`5, 10, 20` → [5, 10, 20]; `email, email+chat` → ["email", "email+chat"]; a JSON list
    is taken as it is."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            levels = json.loads(text)
        except ValueError as error:
            raise ValidationError(f"Not a valid list: {error}.") from error
        if not isinstance(levels, list):
            raise ValidationError("Levels must be a list.")
        return levels
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if all(part.isdigit() for part in parts):
        return [int(part) for part in parts]
    return parts


class LevelsField(forms.CharField):
    """A feature's levels typed as a comma-separated list, lowest first."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", UnfoldAdminTextInputWidget)
        kwargs.setdefault(
            "help_text",
            "Quantity: the amounts on offer, e.g. 5, 10, 20. Custom: the levels from lowest to "
            "highest, e.g. email, email+chat, email+chat+sla. Leave empty for switch and range.",
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, str) and value.startswith("["):
            value = json.loads(value)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value or ""

    def to_python(self, value):
        return parse_levels(super().to_python(value))
