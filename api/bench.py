"""The benchmark's ceiling (BENCHMARKS.md): a bare Django JSON view, served through the same
middleware, process and server as the checks but with no authentication, no cache and no
database. Routed only when `ENTITLE_BENCH_VIEWS=1` (config/urls.py); never in production."""

from django.http import JsonResponse

# The size and shape of a single-feature check's answer, so that only the work differs.
BODY = {
    "feature": "max-members",
    "customer": "acme",
    "kind": "quantity",
    "enabled": True,
    "value": 25,
    "unlimited": False,
    "source": "plan:business",
    "valid_until": None,
    "fallback": "deny",
}


def bare(request):
    """The same JSON every time."""
    return JsonResponse(BODY)
