"""The dashboard's CSV exports and a feature's Reporting tab. Both are admin views (staff
only, through `admin_site.admin_view`), and each table asks for the permission to see what it
lists, on the page and in its export alike."""

from __future__ import annotations

import csv

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from catalog.models import Feature
from reporting import dashboard, selectors
from reporting.filters import ReportFilters
from reporting.selectors import SnapshotState
from reporting.tables import TABLES, Scope
from toolkit.spreadsheet import safe_cell

SNAPSHOT_TABLES = {"feature-usage", "usage-by-source", "limits"}


def export_csv(request: HttpRequest, table: str) -> HttpResponse:
    """One table of the dashboard as CSV: every row, the page's columns and filters."""
    spec = TABLES.get(table)
    if spec is None:
        raise Http404(f"No table {table!r}.")
    if not request.user.has_perm(spec.permission):
        raise PermissionDenied
    now = timezone.now()
    state = selectors.snapshot_state() if table in SNAPSHOT_TABLES else SnapshotState(None, None)
    built = spec.build(
        Scope(filters=ReportFilters.from_query(request.GET), now=now, snapshot=state, limit=None)
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="entitle-{table}-{now:%Y%m%d-%H%M}.csv"'
    writer = csv.writer(response)
    writer.writerow(built.headers)
    for row in built.rows:
        writer.writerow([safe_cell(cell.csv) for cell in row.cells])  # no formulas (toolkit.spreadsheet)
    if table in SNAPSHOT_TABLES and state.current is not None:
        response["X-Computed-At"] = state.current.computed_at.isoformat()
    return response


def feature_report(request: HttpRequest, pk: int, *, admin_site) -> TemplateResponse:
    """A feature's Reporting tab: loaded into its change page when the tab opens (htmx), or
    on a page of its own when opened directly."""
    if not request.user.has_perm("catalog.view_feature"):
        raise PermissionDenied
    feature = get_object_or_404(Feature, pk=pk)
    context = dashboard.build(request, feature=feature)
    if request.headers.get("HX-Request"):
        return TemplateResponse(request, "reporting/feature_report.html", context)
    context.update(admin_site.each_context(request))
    context.update({"title": f"Reporting: {feature.key}", "opts": Feature._meta, "original": feature})
    return TemplateResponse(request, "reporting/feature_page.html", context)
