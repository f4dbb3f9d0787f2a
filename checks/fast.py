"""The check endpoints' warm path, served without DRF's dispatch (BENCHMARKS.md).

DRF's dispatch (request wrapping, authentication, permission and throttle classes, content
negotiation) costs a check about as much as the rest of the check. A warm check needs none of
it: the key is one this process remembers under the current keys revision, the customer's
snapshot is one it trusts (`checks.listener`, `checks.snapshots`), the key is within its rate. Such a
check is answered here: 200 or 304, with the body and headers the DRF view would give
(`tests/checks/test_fast_path.py` compares the two), counted like any other check.

Everything else goes to the DRF view, unchanged: no key or a key not remembered, a listener
that is not healthy, a snapshot this process cannot vouch for, a throttled key, an unknown
customer or feature, a method other than GET, an `Accept` header that is not plainly JSON. So
errors, the cold path and the demo (no Redis) are the DRF view's alone; this module only ever
answers what the DRF view would have answered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError

from api import keys
from checks import counting, snapshots
from checks.counters import counters
from checks.listener import Revisions, known, listener

PLAIN_JSON = frozenset({"", "*/*", "application/json", "application/*"})
CHECK_PREFIX = "/api/v1/customers/"  # of both check endpoints' paths (subscriptions/api/urls.py)


def with_fast_path(view_class: type, *, single: bool) -> Callable:
    """The URL's view of a check: the fast path, falling back to `view_class` (a `CheckView`)."""
    kind = "f" if single else "c"
    return fast_or(
        view_class,
        lambda request, **path: _answer(request, path["external_id"], path.get("feature_key"), kind),
    )


def fast_or(view_class: type, fast: Callable[..., HttpResponse | None]) -> Callable:
    """The URL's view: `fast(request, **path)`, falling back to `view_class` when it answers None
    or Redis fails under it (the listener's health is a fraction of a second old: a connection
    can drop in between). The DRF view then answers, 503 if Redis is really gone.
    drf-spectacular still sees `view_class` (`cls`, `initkwargs`), so the schema is unchanged."""
    slow = view_class.as_view()

    def view(request, **path: str):
        try:
            response = fast(request, **path)
        except RedisError:
            response = None
        return response if response is not None else slow(request, **path)

    view.cls = slow.cls
    view.initkwargs = slow.initkwargs
    view.csrf_exempt = True
    view.__name__ = slow.__name__
    view.__doc__ = slow.__doc__
    return view


def unlisted(view: Callable) -> Callable:
    """The same view without the DRF class drf-spectacular lists it by (for a second route to it)."""

    def same(request, **kwargs):
        return view(request, **kwargs)

    same.csrf_exempt = True
    return same


def read_ahead(request: HttpRequest) -> None:
    """At the start of a check's request, before the middleware runs, send the Redis round trip
    `_answer` will need (`snapshots.read_ahead`): when the path is a check's, the method GET,
    the key's prefix one this process knows as good, the listener healthy, and the customer's
    snapshot not already held in this process's memory. The key itself is checked later, by
    `_answer`: a bad key only costs the read, whose reply is dropped."""
    external_id, slash, rest = request.path_info[len(CHECK_PREFIX) :].partition("/")
    if not slash or not (rest == "entitlements" or rest.startswith("entitlements/")):
        return
    raw_key = _raw_key(request.META)
    if request.method != "GET" or raw_key is None:
        return
    if not known.healthy():
        return
    if snapshots.held(external_id):
        return  # the memory tier answers with no round trip
    if _known_key(raw_key, known) is not None:
        snapshots.read_ahead(external_id)


def _raw_key(meta: dict) -> str | None:
    """The key of an `Authorization: Api-Key <key>` header (api.authentication's scheme)."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    return header[8:].strip() if header.startswith("Api-Key ") else None


def _known_key(raw_key: str, known: Revisions) -> tuple[str, keys.KeyRecord] | None:
    """The key's prefix and record, when this process remembers the prefix as a good key under
    the keys revision the listener knows (the key itself is not checked here)."""
    prefix = keys.split(raw_key)
    remembered = keys.remembered(prefix) if prefix is not None else None
    if remembered is None or remembered[1] is None or remembered[0] != known.keys:
        return None
    return prefix, remembered[1]


def warm_key(meta: dict) -> tuple[str, keys.KeyRecord, datetime] | None:
    """The request's key, when a fast path may take it: a key this process remembers as good
    under the keys revision the listener knows, the listener healthy, and the key itself
    matching and usable now. Its prefix, record and the instant it was checked at (the clock
    of keys and throttle windows, as api.authentication's); None: the DRF view decides."""
    raw_key = _raw_key(meta)
    if raw_key is None:
        return None
    if not known.healthy():
        listener.ensure()
        return None
    found = _known_key(raw_key, known)
    if found is None:
        return None
    prefix, record = found
    at = keys.now()
    if not record.accepts(raw_key, at):
        return None
    return prefix, record, at


def warm_snapshot(
    meta: dict, external_id: str
) -> tuple[str, keys.KeyRecord, datetime, snapshots.Snapshot] | None:
    """The key (`warm_key`) and the customer's snapshot, when a fast path may answer: the
    snapshot trusted in memory, or found current in Redis (one round trip). None: the DRF
    view decides."""
    warm = warm_key(meta)
    if warm is None:
        return None
    prefix, record, at = warm
    snapshot = snapshots.remembered(external_id)
    if snapshot is None or not snapshot.trusted(at.timestamp()):
        snapshot = snapshots.read_current(external_id, at)  # one round trip: the Redis tier
        if snapshot is None:
            return None
    return prefix, record, at, snapshot


def _answer(request, external_id: str, feature_key: str | None, kind: str) -> HttpResponse | None:
    meta = request.META
    if request.method != "GET" or meta.get("HTTP_ACCEPT", "") not in PLAIN_JSON:
        return None
    warm = warm_snapshot(meta, external_id)
    if warm is None:
        return None
    prefix, record, at, snapshot = warm
    now = at.timestamp()
    if not snapshot.exists:
        return None
    answer = None
    if feature_key is not None:
        answer = snapshot.answer(feature_key)
        if answer is None:
            return None
    limit = record.rate_limit or settings.API_RATE_PER_MINUTE
    if not counters.admit(prefix, int(now), limit, feature_key or counting.ALL_FEATURES):
        return None  # the DRF view counts it and answers 429

    until = answer[1] if answer is not None else snapshot.valid_until
    usage = snapshots.usage_of(snapshot, feature_key)  # metered answers' counts: one round trip
    tag = snapshots.usage_tag(usage)
    if_none_match = meta.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        fresh = snapshots.still_fresh(if_none_match, kind, snapshot.revisions, at, tag)
        if fresh is not None:
            return _response(304, None, fresh)
    if answer is not None:
        entry = snapshots.live_entry(answer[0], usage, feature_key) if usage else answer[0]
        body = snapshots.feature_body(external_id, feature_key, entry)
    else:
        body = snapshots.customer_body(external_id, at, snapshot, usage)
    return _response(200, body, snapshots.etag(kind, snapshot.revisions, until, tag))


def _response(status: int, body: bytes | None, etag: str) -> HttpResponse:
    if body is None:
        response = HttpResponse(status=status)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response
