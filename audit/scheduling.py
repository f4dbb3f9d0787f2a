"""Scheduled changes: store an API write now, apply it when due, exactly once.

A change is applied as the very API view that would have served it, as its author and with
its reason, so validation, permissions (the author's, at apply time) and history are the
same as for an immediate write. The sweep claims due rows with
`SELECT … FOR UPDATE SKIP LOCKED` and marks each in the same transaction that applies it:
several workers never apply one change twice, and a worker killed mid-batch leaves its rows
pending for the next sweep (docs/audit.md).

Two ways to apply, one outcome (the aim: 10k due changes in ≤ 5 s on two cores).
- `replay`/`apply_change`: the stored request made through its DRF view, one change at a
  time, in its own savepoint. ~20 queries and 15–22 ms a change: 43–66 changes/s with two
  workers. It is the reference, and it still decides every change the batch path does not.
- `audit.batch`: the claimed batch (`BATCH` changes) applied in memory and written in bulk,
  for the high-volume writes: PUT/PATCH customer, PATCH subscription (plan, status, dates),
  POST override, PUT item entitlement (`audit.batch.WRITES`; the steps live beside each
  app's views, in `subscriptions/batch.py` and `catalog/batch.py`). Each change is parsed by
  the view's input serializer, checked by the service's permission functions (the author's
  permissions and guardian object permissions read once per batch) and validated by the
  model's `full_clean()`, whose queries are answered from rows loaded, and locked as the
  view locks them, in a few queries for the whole batch. Changes apply in order, each in
  its own request scope and change context, so two changes to one object are two history
  rows, as one after the other. `audit.bulk.AuditedWrites` then writes the targets, their
  history rows and audit entries (COPY), the changes' status with theirs, and the check
  API's cache revisions move after commit (catalog.revisions, once per batch, one round
  trip): about 24 queries a batch, whatever its size. 10k changes, two workers: 4.7 s.

Why this is still "through the same validation and permission checks" (docs/audit.md): the
batch path only follows the road to a 2xx answer. A change it predicts the view would
refuse (400, 403, 404), a body or path it does not take, any other kind of write, and a
batch whose bulk write raises or whose step breaks unexpectedly all go through the replay,
after everything before them was written, so their outcome and error text are the view's
own. tests/audit/test_scheduling_batch.py sweeps one mixed scenario both ways and compares
rows, statuses, errors, history, audit entries and revision bumps. Keep that test passing
when a view, serializer, service or model rule changes: the batch steps mirror them, and a
view that starts doing something new (another row, a signal) must be mirrored there too, or
its (method, URL name) taken out of `audit.batch.WRITES`.

Workers side by side: a claim skips the changes whose object (the path's key) another
worker's batch holds, by an advisory lock per object (`_claim`). So two batches never lock
the same rows, and changes to one object apply in order of effective_at; changes to
different objects may apply out of order across workers, as they always could. A worker
alone claims strictly oldest first. The bulk writes speak PostgreSQL; on the SQLite demo
every change is replayed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import Resolver404, resolve
from django.utils import timezone

from audit.batch import apply_batch
from audit.context import change_context, request_scope
from audit.models import ScheduledChange
from audit.writes import save_audited

log = logging.getLogger(__name__)

WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")
BATCH = 500  # changes claimed, applied and committed together
API_PREFIX = "/api/v1/"


@dataclass(frozen=True)
class SchedulerToken:
    """Stands in for an API key when a task replays a change: write scope, no key row."""

    scope: str = "write"


def check_request_shape(method: str, path: str, body: Any) -> None:
    """Refuse, at scheduling time, a request that could never be an API write."""
    method = (method or "").upper()
    if method not in WRITE_METHODS:
        raise ValidationError({"method": f"Only writes can be scheduled: one of {', '.join(WRITE_METHODS)}."})
    if not isinstance(path, str) or not path.startswith(API_PREFIX) or "scheduled-changes" in path:
        raise ValidationError(
            {"path": f"The path must be an API write under {API_PREFIX} (not a scheduled change)."}
        )
    try:
        match = resolve(path)
    except Resolver404 as error:
        raise ValidationError({"path": f"No API endpoint answers {path}."}) from error
    if match.namespace != "api" or match.url_name == "unknown":
        raise ValidationError({"path": f"{path} is not an API endpoint."})
    if body is not None and not isinstance(body, dict | list):
        raise ValidationError({"body": "The body must be a JSON object or list."})
    if body is not None:
        json.dumps(body)


def replay(change: ScheduledChange) -> tuple[int, Any]:
    """Make the stored request through its API view, as its author. Returns (status, data)."""
    from rest_framework.test import APIRequestFactory, force_authenticate

    factory = APIRequestFactory()
    request = factory.generic(
        change.method,
        change.path,
        data=json.dumps(change.body) if change.body is not None else "",
        content_type="application/json",
        HTTP_X_CHANGE_REASON=change.reason,
    )
    force_authenticate(request, user=change.created_by, token=SchedulerToken())
    match = resolve(change.path)
    response = match.func(request, *match.args, **match.kwargs)
    return response.status_code, getattr(response, "data", None)


class _Refused(Exception):
    """Rolls back what a failed replay may have written."""


def _describe(status: int, data: Any) -> str:
    if isinstance(data, dict) and "detail" in data:
        return f"{status}: {data['detail']}"
    return f"{status}: {json.dumps(data, default=str)[:2000]}"


def apply_change(change: ScheduledChange, *, now: datetime) -> bool:
    """Apply one claimed change and record the outcome; a failure touches nothing else."""
    with request_scope(), change_context(actor=change.created_by, reason=change.reason, source="task"):
        try:
            with transaction.atomic():
                status, data = replay(change)
                if not 200 <= status < 300:
                    raise _Refused(_describe(status, data))
        except _Refused as refused:
            change.status, change.error = ScheduledChange.Status.FAILED, str(refused)
        except Exception as error:  # a bug must not stop the sweep: record it, go on
            log.exception("Scheduled change %s crashed", change.pk)
            change.status, change.error = ScheduledChange.Status.FAILED, f"Internal error: {error}"
        else:
            change.status, change.error = ScheduledChange.Status.APPLIED, ""
        change.applied_at = now
        save_audited(change, actor=change.created_by, reason=change.reason, source="task")
    return change.status == ScheduledChange.Status.APPLIED


def sweep_due_changes(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Apply every pending change due by `now`; returns how many were processed. Safe to
    run in several workers at once."""
    processed = 0
    while True:
        moment = now or timezone.now()
        with transaction.atomic():
            due = _claim(moment, batch)
            apply_batch(due, now=moment, replay=apply_change)
        processed += len(due)
        if not due:  # (fewer than `batch` is no sign: others may hold the objects of the rest)
            return processed


# A claimed change also holds, until its batch commits, an advisory lock on the object its
# path names (the 5th segment of /api/v1/<kind>/<key>[/...]: a customer, subscription,
# item...), and a worker skips the changes whose object another worker holds. Without it
# two workers' batches of changes to the same busy objects locked the same rows, and one
# waited out the other's whole batch; with it they never work on the same named object. It
# also keeps the changes to one object in order of effective_at across workers. One worker
# alone still claims strictly oldest first. A batch holds at most `batch` such locks (well
# within PostgreSQL's max_locks_per_transaction × connections for a few workers).
TARGET_LOCKS = 0x5C4ED  # advisory lock namespace of the sweep's targets
# The oldest due changes (a window of a few batches), then those whose object is free, taken
# (and so locked) one by one in that order: only the changes returned take a lock.
FREE_TARGETS = """audit_scheduledchange.id IN (
    SELECT id FROM (
        SELECT id, path FROM audit_scheduledchange WHERE status = %s AND effective_at <= %s
        ORDER BY effective_at, id LIMIT %s
    ) AS oldest
    WHERE pg_try_advisory_xact_lock(%s, hashtext(split_part(oldest.path, '/', 5)))
    LIMIT %s
)"""


def _claim(moment: datetime, batch: int) -> list[ScheduledChange]:
    """Lock and return up to `batch` pending changes due by `moment`, oldest first, that no
    other worker holds, nor any change to the same object."""
    due = (
        # Lock the changes only: locking their authors too (the join) made every other worker
        # skip every change of an author with a batch in flight, so only one worker ever swept.
        ScheduledChange.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("created_by")
        .filter(status=ScheduledChange.Status.PENDING, effective_at__lte=moment)
        .order_by("effective_at", "id")
    )
    if connection.vendor == "postgresql":
        params = [ScheduledChange.Status.PENDING, moment, 4 * batch, TARGET_LOCKS, batch]
        due = due.extra(where=[FREE_TARGETS], params=params)
    return list(due[:batch])


@transaction.atomic
def schedule_change(
    *, method: str, path: str, body: Any, effective_at: datetime, actor: User, reason: str, source: str
) -> ScheduledChange:
    """Store a write to make at `effective_at` (checked for shape now, for effect then)."""
    check_request_shape(method, path, body)
    change = ScheduledChange(
        method=method.upper(),
        path=path,
        body=body,
        effective_at=effective_at,
        reason=" ".join(reason.split()),
        created_by=actor,
    )
    return save_audited(change, actor=actor, reason=reason, source=source)


@transaction.atomic
def cancel_change(*, change: ScheduledChange, actor: User, reason: str, source: str) -> ScheduledChange:
    """Cancel a pending change; its author or whoever may change scheduled changes."""
    change = ScheduledChange.objects.select_for_update().get(pk=change.pk)
    if change.created_by_id != actor.pk and not actor.has_perm("audit.change_scheduledchange"):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Only its author or an administrator may cancel this change.")
    if change.status != ScheduledChange.Status.PENDING:
        raise ValidationError(f"This change is {change.status}: only a pending change can be canceled.")
    change.status = ScheduledChange.Status.CANCELED
    return save_audited(change, actor=actor, reason=reason, source=source)
