"""The front page's figures, for templates/admin/index.html."""

from django import template

from reporting.dashboard import build

register = template.Library()


@register.inclusion_tag("reporting/dashboard.html", takes_context=True)
def reporting_dashboard(context):
    """The dashboard of `reporting.dashboard.build` for this request: taken from the context
    when unfold's DASHBOARD_CALLBACK (`reporting.dashboard.dashboard_callback`) put it there,
    built here otherwise."""
    return context.get("reporting") or build(context["request"])
