"""The API's URLs, namespace "api": `/api/v1/...` (docs/api.md), the schema and its docs.
Paths and names are stable: a scheduled change stores the path of its write and finds the
endpoint's `Write` by it when due (`audit.scheduling`)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from subscriptions.api.urls import check_urlpatterns
from toolkit.rest.views import UnknownPathView

app_name = "api"

v1 = [
    *check_urlpatterns,  # first: the hot path
    path("", include("catalog.api.urls")),
    path("", include("segments.api.urls")),
    path("", include("subscriptions.api.urls")),
    path("", include("usage.api.urls")),
    path("", include("audit.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, as the CSP asks.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Any character, line breaks (%0A) included: such a path is unknown too, and answered in JSON.
    re_path(r"^[\s\S]*$", UnknownPathView.as_view(), name="unknown"),
]
