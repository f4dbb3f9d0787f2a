"""The dashboard's filter form: plan, market and tag, as unfold-styled selects. It only
renders the choices; `reporting.filters.ReportFilters` reads the values."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldAdminSelectWidget

from reporting.filters import ReportFilters


class FilterForm(forms.Form):
    plan = forms.ChoiceField(label="Plan", required=False, widget=UnfoldAdminSelectWidget)
    country = forms.ChoiceField(label="Market", required=False, widget=UnfoldAdminSelectWidget)
    tag = forms.ChoiceField(label="Tag", required=False, widget=UnfoldAdminSelectWidget)

    def __init__(self, filters: ReportFilters, choices: dict[str, list[tuple[str, str]]]) -> None:
        super().__init__(initial={"plan": filters.plan, "country": filters.country, "tag": filters.tag})
        self._offer("plan", [("", "All plans"), *choices.get("plans", [])])
        self._offer("country", [("", "All markets"), *choices.get("countries", [])])
        if choices.get("tags"):
            self._offer("tag", [("", "All tags"), *choices["tags"]])
        else:
            del self.fields["tag"]  # a feature's own tab: the feature is the filter

    def _offer(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices
