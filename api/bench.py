"""The benchmark's ceiling (BENCHMARKS.md): a bare Django JSON view, served through the same
middleware, process and server as the checks but with no authentication, no cache and no
database. Routed only when `ENTITLE_BENCH_VIEWS=1` (config/urls.py); never in production.

The benchmark asks it what it asks the checks, in the same shape: a customer's id in the path,
a different one from request to request, and the same `Authorization` header (which it
ignores). Asked at one fixed URL with no header, it would be spared
work that no endpoint keyed by customer is spared (BENCHMARKS.md, "Rounds and the yardstick");
the benchmark still measures it that way too, as "bare view, one fixed URL"."""

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


def bare(request, external_id: str | None = None):
    """The same JSON every time, whatever the customer."""
    return JsonResponse(BODY)
