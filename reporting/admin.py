"""Reporting in the admin: the snapshots (read-only, for whoever runs the system), the
dashboard's CSV exports and a feature's Reporting tab.

The tab sits on the feature's change page as one of unfold's change-form tabs (a "dataset"
with `tab = True`, the extension point unfold gives a change form for extra tabs). It renders
no figures with the page: the figures are fetched when the tab is first shown, so the feature
page costs not one query more.
"""

from __future__ import annotations

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import path, reverse
from unfold.admin import ModelAdmin
from unfold.datasets import BaseDataset

from reporting import views
from reporting.models import UsageSnapshot
from reporting.tables import REPORTING_TAB


@admin.register(UsageSnapshot)
class UsageSnapshotAdmin(ModelAdmin):
    """The feature usage snapshots: when each was computed, how long it took, and why one
    failed. Written only by the refresh task."""

    list_display = ["computed_at", "status", "customers", "batches", "duration", "finished_at"]
    list_filter = ["status"]
    fields = ["computed_at", "finished_at", "status", "customers", "batches", "countries", "error"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "export/<slug:table>.csv",
                self.admin_site.admin_view(views.export_csv),
                name="reporting_export",
            ),
            path(
                "feature/<int:pk>/",
                self.admin_site.admin_view(self.feature_report),
                name="reporting_feature",
            ),
            *super().get_urls(),
        ]

    def feature_report(self, request, pk):
        return views.feature_report(request, pk, admin_site=self.admin_site)


class FeatureReportingTab(BaseDataset):
    """The "Reporting" tab of a feature's change page (`FeatureAdmin.change_form_datasets`):
    an empty panel that loads the feature's figures (`views.feature_report`) when shown."""

    model = UsageSnapshot  # unfold reads the model's name; no rows of it are listed here
    title = "Reporting"

    def __init__(self, request, extra_context) -> None:
        # Not BaseDataset's: that builds a changelist of `model`, which this tab does not show.
        self.request = request
        self.extra_context = extra_context or {}
        self.object_id = self.extra_context.get("object")
        self.tab = self.object_id is not None  # a feature being added has no figures yet

    @property
    def model_name(self) -> str:
        return REPORTING_TAB.removeprefix("dataset-")

    @property
    def contents(self) -> str:
        if self.object_id is None:
            return ""
        return render_to_string(
            "reporting/feature_tab.html",
            {"url": reverse("admin:reporting_feature", args=[self.object_id]), "tab": REPORTING_TAB},
            request=self.request,
        )
