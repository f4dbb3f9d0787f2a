"""`Authorization: Api-Key <key>`: who is calling, with which scope, and how often.

Authentication is also where a request's one cache round trip happens (docs/operations.md):
the keys revision (is the key this process remembers still as it was?) goes into one
pipeline with whatever the view asks for through `prefetch(request, batch)` (the check
endpoint's revisions and snapshot), and with the counts this process has not sent yet (the
throttle window, last-used stamps, check counts: `checks.counters`). A key this process has
seen costs no query. Warm checks skip all of this: `checks.fast`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core.cache import cache
from django.utils.functional import SimpleLazyObject
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.throttling import BaseThrottle
from rest_framework_api_key.permissions import KeyParser

from api import keys
from checks.counters import WINDOW_SECONDS, counters
from checks.listener import known, listener
from checks.store import Batch, as_int

if TYPE_CHECKING:
    from django.contrib.auth.models import User

_parser = KeyParser()


@dataclass(slots=True)
class KeyPrincipal:
    """`request.auth` of a request made with an API key."""

    prefix: str
    scope: str
    owner_id: int
    rate_limit: int | None
    window_count: int | None = None  # requests of this key in the current throttle window
    window_resets_in: int = WINDOW_SECONDS
    source: str = "api"
    _owner: Any = field(default=None, repr=False)

    def owner(self) -> User:
        """The key's owner, read once per request and only when needed (never on a check)."""
        if self._owner is None:
            from django.contrib.auth.models import User

            try:
                self._owner = User.objects.get(pk=self.owner_id, is_active=True)
            except User.DoesNotExist:
                raise exceptions.AuthenticationFailed("The key's owner is no longer active.") from None
        return self._owner


class Prefetching(Protocol):
    """A view that adds its own reads to the request's single round trip."""

    def prefetch(self, request: Any, batch: Batch) -> None: ...

    def prefetched(self, request: Any, results: list) -> None: ...


class TooManyFailures(exceptions.Throttled):
    """429 for a client that presented too many wrong keys this minute."""

    default_detail = "Too many wrong API keys from this client; retry after the Retry-After seconds."


class FailedKeys:
    """Wrong keys per client (its IP, as DRF's throttles see it: REMOTE_ADDR, or the address
    NUM_PROXIES proxies forwarded) and fixed minute, counted in the shared cache so the limit
    holds across processes. Over API_AUTH_FAILURES_PER_MINUTE (default 30) the client is
    answered 429 with Retry-After instead of 401, and a key this process does not remember is
    not even looked up. A key this process remembers as good is never counted nor held back:
    a valid key's request costs nothing extra."""

    _ident = BaseThrottle()

    @staticmethod
    def limit() -> int:
        return getattr(settings, "API_AUTH_FAILURES_PER_MINUTE", 30)

    def _key(self, request, window: int) -> str:
        return f"authfail:{self._ident.get_ident(request)}:{window}"

    def refuse_if_over(self, request) -> None:
        """429 when this client already failed too often this minute (one cache read)."""
        now = int(time.time())
        count = cache.get(self._key(request, now // WINDOW_SECONDS))
        if count is not None and int(count) >= self.limit():
            raise TooManyFailures(wait=WINDOW_SECONDS - now % WINDOW_SECONDS)

    def refuse(self, request, message: str):
        """Count this failure, then answer 401 (or 429 once over the limit)."""
        now = int(time.time())
        key = self._key(request, now // WINDOW_SECONDS)
        cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between the two calls
            count = 1
        if count > self.limit():
            raise TooManyFailures(wait=WINDOW_SECONDS - now % WINDOW_SECONDS)
        raise exceptions.AuthenticationFailed(message)


failed_keys = FailedKeys()


class ApiKeyAuthentication(BaseAuthentication):
    """No key: not authenticated (401 with `WWW-Authenticate`). A malformed, unknown, revoked
    or expired key, or one whose owner is inactive: 401 too (429 once the client gave too
    many wrong keys: `FailedKeys`)."""

    keyword = "Api-Key"

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="entitle"'

    def authenticate(self, request):
        raw_key = _parser.get(request)
        if raw_key is None:
            return None
        raw_key = raw_key.strip()
        prefix = keys.split(raw_key)
        if prefix is None:
            failed_keys.refuse(request, "Malformed API key: expected Api-Key <prefix>.<secret>.")
        at = keys.now()
        remembered = keys.remembered(prefix)
        if remembered is None:
            failed_keys.refuse_if_over(request)  # a guesser's next key costs no query
            revision = keys.revision()  # read before the row, so a change in between is seen later
            record = keys.load(prefix)
            keys.remember(prefix, revision, record)
        else:
            revision, record = remembered
            if record is None or not record.accepts(raw_key, at):
                # Known bad here; ask whether keys changed since before refusing.
                current = keys.revision()
                if current != revision:
                    revision, record = current, keys.load(prefix)
                    keys.remember(prefix, revision, record)
        if record is None or not record.accepts(raw_key, at):
            failed_keys.refuse(request, "Invalid, revoked or expired API key.")

        listener.ensure()
        view = request.parser_context.get("view") if request.parser_context else None
        prefetch = getattr(view, "prefetch", None)
        stamp = int(at.timestamp())
        counters.request(prefix, stamp)
        batch = Batch()
        revision_at = batch.get(keys.REVISION_KEY)
        if prefetch is not None:
            prefetch(request, batch)
        results = counters.execute(batch)  # with the counts this process has not sent yet

        current = as_int(results[revision_at])
        known.observe_read(keys=current)
        if current != revision:
            # A key or owner changed since this process read the key (or the stamp was lost).
            current = current if current is not None else keys.revision()
            record = keys.load(prefix)
            keys.remember(prefix, current, record)
            if record is None or not record.accepts(raw_key, at):
                raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        principal = KeyPrincipal(
            prefix=prefix,
            scope=record.scope,
            owner_id=record.owner_id,
            rate_limit=record.rate_limit,
            window_count=counters.window_count(prefix, stamp // WINDOW_SECONDS),
            window_resets_in=WINDOW_SECONDS - stamp % WINDOW_SECONDS,
        )
        if prefetch is not None:
            view.prefetched(request, results)
        # The owner is a user row: read it only when a view needs it (writes), not on checks.
        return SimpleLazyObject(principal.owner), principal


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The key header in the OpenAPI schema (drf-spectacular registers it on import)."""

    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; a key is made with `manage.py create_api_key` or in the "
            "admin, and shown once.",
        }
