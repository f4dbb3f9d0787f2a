from django.contrib import admin
from django.urls import include, path

from config import env
from subscriptions.api.urls import top_urlpatterns

urlpatterns = [
    *top_urlpatterns,  # the entitlement checks, nearly all the traffic: matched first of all
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]

if env.flag("ENTITLE_BENCH_VIEWS"):  # the benchmark's bare view (BENCHMARKS.md); off unless asked for
    from api.bench import bare

    urlpatterns += [
        path("bench/bare", bare, name="bench-bare"),
        path("bench/bare/<str:external_id>", bare, name="bench-bare-customer"),
    ]
