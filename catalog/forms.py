"""Form fields that let non-engineers type values as text: `25`, `unlimited`, `email+chat`,
`5, 10, 20`. The models' clean() turns the text into the canonical value for the feature."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django_countries import countries
from unfold.widgets import UnfoldAdminSelect2MultipleWidget, UnfoldAdminTextInputWidget

from catalog.values import display_value, value_hint


class SearchableMultipleSelect(UnfoldAdminSelect2MultipleWidget):
    """unfold's select2 box for several choices, searched in the page's own options. (unfold
    also gives it Django's `admin-autocomplete` class, which makes Django's script ask the
    server for options instead, and find none.)"""

    def __init__(self, attrs=None, choices=()):
        super().__init__(attrs, choices)
        self.attrs["class"] = " ".join(c for c in self.attrs["class"].split() if c != "admin-autocomplete")


class MarketsField(forms.TypedMultipleChoiceField):
    """A feature's markets: several countries picked in a searchable list; none means
    everywhere. (unfold draws a multiple country field as a single select by default, which
    could never be saved.)"""

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", lambda: list(countries))
        kwargs.setdefault("required", False)
        widget = SearchableMultipleSelect(attrs={"data-placeholder": "Everywhere"})
        kwargs.setdefault("widget", widget)
        kwargs.setdefault(
            "help_text",
            "Countries where the feature may be offered: type to search, pick as many as needed. "
            "Leave empty to offer it everywhere.",
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        # The model hands over its countries (a list-like object whose text is their names):
        # the select box needs their codes to show them chosen.
        if value is None or isinstance(value, str):
            return value
        return [getattr(country, "code", country) for country in value]


class FeatureValueFormMixin:
    """For forms with a `value` of a feature: an empty value is answered with what would fit
    (not with the model's "None is not a level"), and the model's own check of the value is
    not run on nothing."""

    def feature_for_value(self):
        feature = self.cleaned_data.get("feature") if "feature" in self.fields else None
        if feature is None and getattr(self.instance, "feature_id", None):
            feature = self.instance.feature
        return feature

    def clean(self):
        cleaned = super().clean()
        if "value" in self.fields and cleaned.get("value") in (None, ""):
            feature = self.feature_for_value()
            self.errors.pop("value", None)
            cleaned.pop("value", None)
            self.add_error("value", value_hint(feature) if feature else "Give a value.")
        return cleaned

    def _post_clean(self):
        if self.has_error("value"):
            return  # the model would only repeat, less clearly, that the value is missing
        super()._post_clean()


class ValueField(forms.CharField):
    """A feature value typed as text; an empty box means no value."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", UnfoldAdminTextInputWidget)
        kwargs.setdefault(
            "help_text",
            "on for a switch, a number, unlimited, or a level's name; for a metered feature, its "
            "limit per period (a whole number, or unlimited where allowed)",
        )
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
            "highest, e.g. email, email+chat, email+chat+sla. Leave empty for switch, range and metered.",
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
