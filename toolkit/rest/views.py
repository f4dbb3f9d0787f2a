"""What every API view shares: the change reason of a write, who the write runs as, and
the JSON 404 for paths the API does not know.

Who a write runs as is read from `request.auth`: a principal with an `owner()` method (an
API key's, `api.authentication.KeyPrincipal`) acts as that owner with its own `source`; any
other request acts as `request.user`. Asking the principal, rather than checking its class,
keeps this module free of API keys."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol, runtime_checkable

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.views import APIView

from audit.context import normalize_reason
from toolkit.rest.errors import ChangeReasonMissing
from toolkit.rest.pagination import KeyCursorPagination

REASON_HEADER = "X-Change-Reason"


@runtime_checkable
class OwnedPrincipal(Protocol):
    """`request.auth` of a request made on someone's behalf: writes run as its owner."""

    source: str

    def owner(self) -> Any: ...


def change_reason(request) -> str:
    """The write's reason from `X-Change-Reason` (UTF-8, though WSGI hands headers over as
    Latin-1); blank or missing is a 400 `change_reason_required`."""
    raw = request.headers.get(REASON_HEADER, "")
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        raw = raw.encode("latin-1").decode("utf-8")
    reason = normalize_reason(raw.replace("\x00", " "))
    if not reason:
        raise ChangeReasonMissing()
    return reason


class ApiView(APIView):
    """A view whose writes need a reason; `self.who()` is what services take as actor,
    reason and source (the key's owner, the header, "api")."""

    reason: str = ""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in SAFE_METHODS:
            self.reason = change_reason(request)

    def who(self) -> dict[str, Any]:
        """A key's owner (read now: checks never need it), or the user a replayed write runs as."""
        principal = self.request.auth
        if isinstance(principal, OwnedPrincipal):
            return {"actor": principal.owner(), "reason": self.reason, "source": principal.source}
        # Replayed in process (audit.scheduling): the enclosing change context's source wins.
        return {
            "actor": self.request.user,
            "reason": self.reason,
            "source": getattr(principal, "source", "task"),
        }


class ListQuery(serializers.Serializer):
    """A list's query parameters; each view's filters subclass it. Query values are text,
    so numbers and choices are parsed from it; a value that does not parse is a 400."""


class ApiListView(generics.ListAPIView):
    """A read-only list, paged by cursor over `cursor_ordering`, filtered by `query_class`
    (validated: `self.query` holds the filters given)."""

    pagination_class = KeyCursorPagination
    cursor_ordering = "pk"
    query_class: type[ListQuery] = ListQuery
    query: dict[str, Any]

    def list(self, request, *args, **kwargs):
        params = request.query_params
        known = {"limit", "cursor", *self.query_class().fields}
        repeated = sorted(name for name in known if len(params.getlist(name)) > 1)
        errors = {name: ["Give this parameter once."] for name in repeated}
        limit = params.get("limit")
        if limit is not None and not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 1000):
            errors["limit"] = ["A whole number from 1 to 1000."]
        query = self.query_class(
            data={name: params[name] for name in self.query_class().fields if name in params}
        )
        if not query.is_valid():
            errors.update(query.errors)
        if errors:
            raise ValidationError(errors)
        self.query = {name: value for name, value in query.validated_data.items() if value not in ("", None)}
        return super().list(request, *args, **kwargs)


@extend_schema(exclude=True)
class UnknownPathView(APIView):
    """Any other path under /api/: a JSON 404, never Django's HTML page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def _not_found(self, request, *args, **kwargs):
        raise NotFound("No such endpoint.")

    get = post = put = patch = delete = head = options = _not_found
