from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config import env
from subscriptions.api.urls import top_urlpatterns
from usage.api.urls import top_urlpatterns as usage_top_urlpatterns


def favicon(request):
    """Browsers ask for /favicon.ico on their own (API docs, JSON answers): the admin's icon."""
    return HttpResponsePermanentRedirect(static("entitle/favicon.svg"))


urlpatterns = [
    *top_urlpatterns,  # the entitlement checks, nearly all the traffic: matched first of all
    *usage_top_urlpatterns,  # then consumes of metered features, on the same hot path
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
    # No public site besides the admin and the API: the root leads to the admin.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("favicon.ico", favicon),
]

if env.flag("ENTITLE_BENCH_VIEWS"):  # the benchmark's bare view (BENCHMARKS.md); off unless asked for
    from api.bench import bare

    urlpatterns += [
        path("bench/bare", bare, name="bench-bare"),
        path("bench/bare/<str:external_id>", bare, name="bench-bare-customer"),
    ]
