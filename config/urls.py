from django.contrib import admin
from django.urls import include, path

from config import env

urlpatterns = [
    path("api/", include("api.urls")),  # first: the entitlement checks are nearly all the traffic
    path("admin/", admin.site.urls),
]

if env.flag("ENTITLE_BENCH_VIEWS"):  # the benchmark's bare view (BENCHMARKS.md); off unless asked for
    from api.bench import bare

    urlpatterns.append(path("bench/bare", bare, name="bench-bare"))
