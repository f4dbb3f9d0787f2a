"""Per-key throttling: a fixed one-minute window per key, counted in the request's single
round trip (`api.authentication`); over the key's limit the answer is 429 with Retry-After."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle


class KeyRateThrottle(BaseThrottle):
    """At most `rate_limit` (or API_RATE_PER_MINUTE) requests per key and minute."""

    def allow_request(self, request, view) -> bool:
        principal = request.auth
        count = getattr(principal, "window_count", None)
        if count is None:  # no key: already refused by authentication or scope
            return True
        self._wait = principal.window_resets_in
        limit = principal.rate_limit or settings.API_RATE_PER_MINUTE
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
