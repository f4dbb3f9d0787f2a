"""A check's Redis round trip, sent before the rest of the middleware runs (BENCHMARKS.md).

A check served from Redis (`checks.snapshots.read_current`) waits for one round trip. Sent when
the view asks, the thread sleeps until the reply comes, and another thread takes the GIL; sent
first thing, the reply is usually there by the time the view asks, after Django's middleware
has run. Nothing else changes: the view reads the reply only if it would have sent the same
command, and a reply it does not read is dropped when the response leaves.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from checks import fast, snapshots


class ReadAheadMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(fast.CHECK_PREFIX):
            return self.get_response(request)
        fast.read_ahead(request)
        try:
            return self.get_response(request)
        finally:
            snapshots.settle()
