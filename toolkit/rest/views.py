"""What every API view shares: the change reason of a write, who the write runs as, the
writes it makes, and the JSON 404 for paths the API does not know.

A view names its writes in `writes`: for each method, a `Write` (the body's serializer and a
plain function that makes the write through the services). The view validates and calls it
for a request; a scheduled change (`audit.scheduling`) makes the very same call when it is
due, with no request at all.

Who a write runs as is read from `request.auth`: a principal with an `owner()` method (an
API key's, `api.authentication.KeyPrincipal`) acts as that owner with its own `source`; any
other request acts as `request.user`. Asking the principal, rather than checking its class,
keeps this module free of API keys."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.views import APIView

from toolkit.change_context import normalize_reason
from toolkit.rest.exceptions import ChangeReasonMissing
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


_serializers = threading.local()


@dataclass(frozen=True, eq=False)
class Write:
    """One write of an API endpoint, as a plain call: `body` validates the request body and
    `call(data, actor=, reason=, source=, **path)` makes the write through the services, in
    one transaction, and returns what the view renders. `partial` (PUT false, PATCH true) is
    passed on to `call` when given. `preload`, when given, loads the rows of many such writes
    at once for a bulk run (`audit.bulk.BulkRun`)."""

    body: type[serializers.Serializer] | None
    call: Callable[..., Any]
    partial: bool | None = None
    many: bool = False
    preload: Callable[..., Any] | None = field(default=None)

    def validate(self, data: Any) -> Any:
        """The body's validated data, or DRF's ValidationError with the serializer's errors.
        One serializer per write and thread is built and reused: building one deep-copies
        all its fields, and `run_validation` keeps no state."""
        if self.body is None:
            return None
        held = _serializers.__dict__.setdefault("held", {})
        serializer = held.get(id(self))
        if serializer is None:
            serializer = held[id(self)] = self.body(partial=bool(self.partial), many=self.many)
        return serializer.run_validation(data)

    def __call__(self, data: Any, *, actor: Any, reason: str, source: str, **path: Any) -> Any:
        validated = self.validate(data)
        with transaction.atomic():
            return self.make(validated, actor=actor, reason=reason, source=source, **path)

    def make(self, validated: Any, *, actor: Any, reason: str, source: str, **path: Any) -> Any:
        """The write with a body validated already."""
        options = {} if self.partial is None else {"partial": self.partial}
        return self.call(validated, actor=actor, reason=reason, source=source, **options, **path)


class ApiView(APIView):
    """A view whose writes need a reason; `self.who()` is what services take as actor,
    reason and source (the key's owner, the header, "api"); `self.perform(**path)` makes
    the request's write, named in `writes`."""

    reason: str = ""
    writes: ClassVar[dict[str, Write]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in SAFE_METHODS:
            self.reason = change_reason(request)

    def who(self) -> dict[str, Any]:
        """A key's owner (read now: checks never need it), or the request's user."""
        principal = self.request.auth
        if isinstance(principal, OwnedPrincipal):
            return {"actor": principal.owner(), "reason": self.reason, "source": principal.source}
        return {"actor": self.request.user, "reason": self.reason, "source": "api"}

    def perform(self, **path: Any) -> Any:
        """Make this request's write (`writes[method]`) with its body, as `who()`."""
        return self.writes[self.request.method](self.request.data, **self.who(), **path)


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
