"""The consume endpoint's warm path, served without DRF's dispatch, as `checks.fast` serves a
warm check: a key this process remembers, a snapshot it trusts (from memory, or found current
in Redis), the key within its rate, and a body that is plainly valid. Then the only round trip
to Redis is the consumption itself (`usage.meter`), and the answer is the bytes the DRF view
would give (`tests/usage/test_fast_consume.py` compares the two).

Anything else goes to the DRF view (`views.ConsumeView`): errors, bad bodies, cold customers,
the demo without Redis, a throttled key, a meter that could not answer.
"""

from __future__ import annotations

import re

import orjson
from django.conf import settings
from django.http import HttpResponse
from redis.exceptions import RedisError

from catalog.values import LARGEST_WHOLE_NUMBER
from checks import snapshots
from checks.counters import counters
from checks.fast import PLAIN_JSON, warm_snapshot
from usage import meter
from usage.api.serializers import IDEMPOTENCY_KEY

_KEY = re.compile(IDEMPOTENCY_KEY)
FIELDS = frozenset({"quantity", "idempotency_key"})
LARGEST_BODY = 4096  # anything larger is the DRF view's (and its 413)


def consume(request, external_id: str, feature_key: str) -> HttpResponse | None:
    """The answer of a warm consume, or None for the DRF view to give."""
    meta = request.META
    if request.method != "POST" or meta.get("HTTP_ACCEPT", "") not in PLAIN_JSON:
        return None
    if not meta.get("CONTENT_TYPE", "").startswith("application/json"):
        return None
    warm = warm_snapshot(meta, external_id)
    if warm is None:
        return None
    prefix, record, at, snapshot = warm
    now = at.timestamp()
    found = snapshot.meter_of(feature_key) if snapshot.exists else None
    body = _body(meta, request)
    if found is None or body is None:
        return None
    quantity, idempotency_key = body
    if not counters.admit(prefix, int(now), record.rate_limit or settings.API_RATE_PER_MINUTE, None):
        return None
    try:
        outcome = meter.consume(found, quantity, idempotency_key, at=at)
    except (meter.CounterFull, RedisError):
        return None  # the DRF view meets it again and answers it (409, 503)
    answer = {
        "allowed": outcome.allowed,
        "customer": external_id,
        "feature": feature_key,
        "used": outcome.used,
        "limit": outcome.limit,
        "remaining": outcome.remaining(),
        "resets_at": snapshots.iso(found.resets_at),
        "limit_type": "hard" if found.hard else "soft",
    }
    response = HttpResponse(orjson.dumps(answer), content_type="application/json")
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _body(meta: dict, request) -> tuple[int, str] | None:
    """The quantity and idempotency key of a body that is plainly valid, else None."""
    try:
        if int(meta.get("CONTENT_LENGTH") or 0) > LARGEST_BODY:
            return None
        data = orjson.loads(request.body) if request.body else {}
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not FIELDS.issuperset(data):
        return None
    quantity = data.get("quantity", 1)
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 1 <= quantity <= LARGEST_WHOLE_NUMBER
    ):
        return None
    key = data.get("idempotency_key", "")
    if "idempotency_key" in data and not (isinstance(key, str) and _KEY.fullmatch(key)):
        return None
    return quantity, key
