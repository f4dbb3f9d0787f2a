"""The Content-Security-Policy middleware (the policy itself is config/settings/csp.py)."""

from csp.middleware import CSPMiddleware
from django.conf import settings


class PagesCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, skipping the excluded prefixes before the header is built
    rather than after (django-csp builds it for every response, then drops it)."""

    def process_response(self, request, response):
        if request.path_info.startswith(tuple(settings.CONTENT_SECURITY_POLICY["EXCLUDE_URL_PREFIXES"])):
            return response
        return super().process_response(request, response)
