"""The Content-Security-Policy middleware (the policy itself is config/settings/csp.py)."""

from csp.middleware import CSPMiddleware
from django.conf import settings


class PagesCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, doing nothing at all for the excluded prefixes (the JSON API,
    on the entitlement check's hot path): no nonce made on the way in, no header built on the
    way out (django-csp would build it for every response, then drop it)."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.excluded = tuple(settings.CONTENT_SECURITY_POLICY["EXCLUDE_URL_PREFIXES"])

    def process_request(self, request):
        if not request.path_info.startswith(self.excluded):
            super().process_request(request)

    def process_response(self, request, response):
        if request.path_info.startswith(self.excluded):
            return response
        return super().process_response(request, response)
