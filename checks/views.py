"""The base of the entitlement check views (docs/api.md, docs/operations.md), which
`subscriptions.api.views` builds its two check endpoints on.

A check adds its reads to the request's single round trip (`prefetch`, called by the key
authentication): the two revisions, the shared snapshot when process memory has none, and
the check count. An answer is then built from memory, from that snapshot, or — cold — from
the database (`checks.snapshots`). A check whose answer is an error is taken back off the count.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpResponse
from django.utils import timezone

from checks import counting, snapshots
from checks.store import Batch
from toolkit.rest.views import ApiView

NOT_MODIFIED = 304


class CheckView(ApiView):
    """Base of the two check endpoints; `counted_feature` says what a check counts as."""

    hot: snapshots.Prefetch | None = None
    counted_at: datetime | None = None

    def counted_feature(self) -> str:
        return counting.ALL_FEATURES

    # Called by api.authentication.ApiKeyAuthentication around its one round trip.
    def prefetch(self, request, batch: Batch) -> None:
        at = timezone.now()
        self.hot = snapshots.Prefetch(external_id=self.kwargs["external_id"], at=at)
        self.hot.queue(batch)
        counting.count(self.counted_feature(), at)
        self.counted_at = at

    def prefetched(self, request, results: list) -> None:
        assert self.hot is not None
        self.hot.receive(results)

    def prepared(self) -> snapshots.Prefetch:
        """The revisions (and perhaps the snapshot) of this check, read in the round trip."""
        if self.hot is None or self.hot.revisions is None:
            # Not read in the key's round trip (a request authenticated another way): read now.
            self.hot = snapshots.Prefetch(external_id=self.kwargs["external_id"], at=timezone.now()).fetch()
        return self.hot

    def not_modified(self, kind: str, usage: str = "") -> HttpResponse | None:
        """304 when If-None-Match names an ETag (of this `kind`: "c" all, "f" one feature)
        that still describes the answer; `usage`: the counts of its metered answers, once read
        (`snapshots.usage_tag`)."""
        header = self.request.headers.get("If-None-Match")
        hot = self.prepared()
        if not header or hot.revisions is None:
            return None
        fresh = snapshots.still_fresh(header, kind, hot.revisions, hot.at, usage)
        if fresh is None:
            return None
        response = HttpResponse(status=NOT_MODIFIED)
        response["ETag"] = fresh
        response["Cache-Control"] = "private, no-cache"
        return response

    def json(self, body: bytes, etag: str) -> HttpResponse:
        response = HttpResponse(body)
        response["Content-Type"] = "application/json"
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and response.status_code in (200, NOT_MODIFIED):
            # DRF names the allowed methods on every answer. HTTP asks for them only with a 405
            # (and OPTIONS gives them); an answer on an application's hot path goes without.
            del response["Allow"]
        if self.counted_at is not None and response.status_code not in (200, NOT_MODIFIED):
            counting.uncount(self.counted_feature(), self.counted_at)
            self.counted_at = None
        return response
