"""Gives every HTTP request an id shared by all history rows it writes."""

import uuid

from toolkit.change_context import request_scope


class RequestIdMiddleware:
    """Reads or makes `X-Request-ID`, scopes the request's writes to it, and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            request_id = uuid.UUID(request.headers.get("X-Request-ID", ""))
        except ValueError:
            request_id = uuid.uuid4()
        request.request_id = request_id
        with request_scope(request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = str(request_id)
        return response
