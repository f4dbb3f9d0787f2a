"""Who is changing what, and why: the change context every audited write runs inside.

Services open a context with `change_context(actor=..., reason=..., source=...)`; the history
machinery (`audit.history`) reads it and refuses to record a row without one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SOURCES = ("admin", "api", "task", "import", "shell")


class ChangeReasonRequired(Exception):
    """A tracked model was about to be written with no reason for the change."""


@dataclass(frozen=True, slots=True)
class ChangeContext:
    actor: User | None  # None only for system jobs
    reason: str
    source: str
    request_id: uuid.UUID


_current: ContextVar[ChangeContext | None] = ContextVar("change_context", default=None)
_request_id: ContextVar[uuid.UUID | None] = ContextVar("request_id", default=None)


def normalize_reason(reason: str | None) -> str:
    """Collapse white space; an empty result means no reason was given."""
    return " ".join((reason or "").split())


@contextmanager
def change_context(*, actor: User | None, reason: str, source: str) -> Iterator[ChangeContext]:
    """Run the enclosed writes as `actor`, for `reason`, from `source`.

    Nested contexts share the outer request id, so one admin save or one API call is one
    request in the audit log, and the outer source: a service a task calls inside its own
    context is recorded as coming from the task.
    """
    reason = normalize_reason(reason)
    if not reason:
        raise ChangeReasonRequired("Say why this change is made.")
    if source not in SOURCES:
        raise ValueError(f"Unknown change source {source!r}.")
    outer = _current.get()
    request_id = (outer.request_id if outer else None) or _request_id.get() or uuid.uuid4()
    source = outer.source if outer else source
    token = _current.set(ChangeContext(actor, reason, source, request_id))
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


def current() -> ChangeContext | None:
    """The change context in force, if any."""
    return _current.get()


@contextmanager
def within(context: ChangeContext) -> Iterator[ChangeContext]:
    """Run the enclosed code in `context` exactly (its request id too): a write recorded
    now and written later is recorded as it was made."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


@contextmanager
def request_scope(request_id: uuid.UUID | None = None) -> Iterator[uuid.UUID]:
    """Tie every change context opened inside to one request id (HTTP request, task run)."""
    request_id = request_id or uuid.uuid4()
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)
