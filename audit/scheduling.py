"""Scheduled changes: store an API write now, make it when due, exactly once.

A change is stored as the request that would make it (method, path, body) and, when due,
made as that very write: the path names the endpoint, whose view declares the write
(`toolkit.rest.views.Write`: the body's serializer and the call of the services it makes);
the write runs as its author, with its reason, source "task". So validation, permissions
(the author's, at apply time) and history are those of an immediate write, with no HTTP
request made. A refused write fails the change with the answer the API would have given
(`404: No customer acme.`).

The sweep claims due rows with `SELECT … FOR UPDATE SKIP LOCKED` and marks each in the same
transaction that applies it: several workers never apply one change twice, and a worker
killed mid-batch leaves its rows pending for the next sweep (docs/audit.md).

A claimed batch is made in bulk (`audit.bulk.BulkRun`, PostgreSQL): the writes whose
endpoint can preload its rows (`Write.preload`: customers, plan and status changes,
overrides, item entitlements) run through their services against rows loaded for the whole
batch, and are written together with their history rows, audit entries and the changes'
own status. Any other write, and any write that needs a row the batch did not load, is made
on its own, after what came before it is written. If writing the batch fails (a key or a
constraint the database refuses), its savepoint is rolled back and its changes are made one
by one. Changes apply in order, each in its own request scope.

Workers side by side: a claim skips the changes whose object (the path's key) another
worker's batch holds, by an advisory lock per object (`_claim`). So two batches never lock
the same rows, and changes to one object apply in order of effective_at; changes to
different objects may apply out of order across workers, as they always could. A worker
alone claims strictly oldest first.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.urls import Resolver404, resolve
from django.utils import timezone
from rest_framework.exceptions import APIException

from audit.bulk import BulkRun, NotHeld
from audit.models import ScheduledChange
from audit.writes import save_audited
from toolkit import revisions
from toolkit.bounds import INT64_MAX, INT64_MIN, out_of_range_number
from toolkit.change_context import change_context, request_scope
from toolkit.rest.errors import exception_handler
from toolkit.rest.views import Write

log = logging.getLogger(__name__)

WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")
BATCH = 500  # changes claimed, applied and committed together
API_PREFIX = "/api/v1/"
SOURCE = "task"


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
    if _write_of(method, match) is None:
        raise ValidationError({"method": f"{path} takes no {method}."})
    if body is not None and not isinstance(body, dict | list):
        raise ValidationError({"body": "The body must be a JSON object or list."})
    if body is not None:
        # What the API's parser would refuse of a request body, refused now: when due, the
        # stored body is used as it is.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and len(json.dumps(body).encode()) > limit:
            raise ValidationError({"body": f"The body is larger than {limit} bytes."})
        where = out_of_range_number(body)
        if where is not None:
            bounds = f"{INT64_MIN} to {INT64_MAX}"
            raise ValidationError({"body": f"Numbers must lie within {bounds}: see {where[:200]}."})


def _write_of(method: str, match) -> Write | None:
    view_class = getattr(match.func, "view_class", None)
    return getattr(view_class, "writes", {}).get(method)


@dataclass
class Due:
    """A claimed change, ready to make: its write and path arguments, or why it cannot be."""

    change: ScheduledChange
    write: Write | None = None
    path: dict[str, Any] | None = None
    body: Any = None
    data: Any = None  # the validated body, when the write may run in bulk
    refused: str = ""  # why it cannot be made at all
    outcome: tuple[str, str] = ("", "")  # (status, error) when made in bulk


def _prepare(change: ScheduledChange) -> Due:
    due = Due(change)
    try:
        match = resolve(change.path)
    except Resolver404:
        match = None
    if match is None or match.namespace != "api" or match.url_name == "unknown" or "?" in change.path:
        due.refused = "404: No such endpoint."
        return due
    due.write = _write_of(change.method, match)
    if due.write is None:
        due.refused = f'405: Method "{change.method}" not allowed.'
        return due
    due.path = dict(match.kwargs)
    due.body = {} if change.body is None else change.body  # checked as a request body when stored
    return due


def describe(error: Exception) -> str:
    """A refused write in the API's words: "<status>: <detail or errors>"."""
    response = exception_handler(error, {})
    if response is None:
        return f"Internal error: {error}"
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        return f"{response.status_code}: {data['detail']}"
    return f"{response.status_code}: {json.dumps(data, default=str)[:2000]}"


def _as_author(change: ScheduledChange) -> dict[str, Any]:
    return {"actor": change.created_by, "reason": change.reason, "source": SOURCE}


def apply_change(due: Due, *, now: datetime) -> bool:
    """Make one claimed change on its own and record the outcome; a failure touches nothing else."""
    change = due.change
    with request_scope():
        if due.refused:
            change.status, change.error = ScheduledChange.Status.FAILED, due.refused
        else:
            try:
                due.write(due.body, **_as_author(change), **due.path)
            except (APIException, ValidationError, PermissionDenied, ObjectDoesNotExist) as refused:
                change.status, change.error = ScheduledChange.Status.FAILED, describe(refused)
            except Exception as error:  # a bug must not stop the sweep: record it, go on
                log.exception("Scheduled change %s crashed", change.pk)
                change.status, change.error = ScheduledChange.Status.FAILED, describe(error)
            else:
                change.status, change.error = ScheduledChange.Status.APPLIED, ""
        change.applied_at = now
        save_audited(change, actor=change.created_by, reason=change.reason, source=SOURCE)
    return change.status == ScheduledChange.Status.APPLIED


def apply_claimed(changes: Sequence[ScheduledChange], *, now: datetime, in_bulk: bool = True) -> None:
    """Make claimed `changes` in order: in bulk where their writes allow (the module
    docstring says how), else, or without `in_bulk`, one by one."""
    authors: dict[int, User] = {}
    for change in changes:  # one object per author: its permissions are read once a batch
        change.created_by = authors.setdefault(change.created_by_id, change.created_by)
    dues = [_prepare(change) for change in changes]
    if not in_bulk or connection.vendor != "postgresql":  # bulk writes speak PostgreSQL (COPY)
        for due in dues:
            apply_change(due, now=now)
        return
    with revisions.coalesced():
        _apply_in_bulk(dues, now=now)


def _apply_in_bulk(dues: list[Due], *, now: datetime) -> None:
    run, made, index = None, [], 0
    while index < len(dues):
        if run is None:
            run = _loaded_run(dues[index:])
        due = dues[index]
        index += 1
        if due.data is not None and _made_in(run, due, now=now):
            made.append(due)
            continue
        # On its own: after what came before it is written, and the rows read afresh after.
        _flush(run, made, now=now)
        made, run = [], None
        apply_change(due, now=now)
    _flush(run, made, now=now)


def _made_in(run: BulkRun, due: Due, *, now: datetime) -> bool:
    """Make `due` in `run` and record its outcome there, in one request scope; False when it
    must be made on its own."""
    change = due.change
    with request_scope():
        try:
            with run.write():
                due.write.make(due.data, **_as_author(change), **due.path)
        except (APIException, ValidationError, PermissionDenied, ObjectDoesNotExist) as refused:
            _record(run, due, ScheduledChange.Status.FAILED, describe(refused), now)
        except NotHeld:
            return False
        except Exception:
            log.exception("Scheduled change %s broke its bulk run: making it on its own", change.pk)
            return False
        else:
            _record(run, due, ScheduledChange.Status.APPLIED, "", now)
    return True


def _loaded_run(dues: Sequence[Due]) -> BulkRun:
    """A run with the rows of every bulk-capable write among `dues` loaded (and locked); the
    writes it can take get their validated body in `data`."""
    groups: dict[int, list[tuple[Due, Any]]] = {}
    for due in dues:
        due.data = None
        if due.refused or due.write.preload is None:
            continue
        try:
            data = due.write.validate(due.body)
        except APIException:
            continue  # refused on its own, in the serializer's words
        groups.setdefault(id(due.write), []).append((due, data))
    run = BulkRun()
    try:
        with transaction.atomic():  # a failed query must not spoil what is made after it
            # One order of tables for every worker, so that sweeps never wait on each other
            # in a cycle (and the claim keeps them off each other's objects).
            for group in sorted(groups.values(), key=lambda group: group[0][0].write.call.__qualname__):
                write = group[0][0].write
                taken = write.preload(run, [due.path for due, _ in group], [data for _, data in group])
                for (due, data), take in zip(group, taken or [True] * len(group), strict=True):
                    if take:
                        due.data = data
    except Exception:
        log.exception("Rows for %s scheduled changes could not be loaded: making them one by one", len(dues))
        for due in dues:
            due.data = None
    return run


def _record(run: BulkRun, due: Due, status: str, error: str, now: datetime) -> None:
    """The change's own outcome, written with the run (a copy: the claimed row stays as it is
    if the run must be made again one by one)."""
    change = due.change
    done = copy.copy(change)
    done.status, done.error, done.applied_at = status, error, now
    due.outcome = (status, error)
    with change_context(actor=change.created_by, reason=change.reason, source=SOURCE):
        run.writes.changed(done)


def _flush(run: BulkRun | None, made: list[Due], *, now: datetime) -> None:
    if run is None or not made:
        return
    try:
        run.flush()
    except Exception:
        log.warning(
            "A batch of %s scheduled changes could not be written: making them one by one",
            len(made),
            exc_info=True,
        )
        for due in made:
            apply_change(due, now=now)
        return
    for due in made:
        (due.change.status, due.change.error), due.change.applied_at = due.outcome, now


def sweep_due_changes(*, now: datetime | None = None, batch: int = BATCH, in_bulk: bool = True) -> int:
    """Apply every pending change due by `now`; returns how many were processed. Safe to
    run in several workers at once. Without `in_bulk`, each change is made on its own."""
    processed = 0
    while True:
        moment = now or timezone.now()
        with transaction.atomic():
            due = _claim(moment, batch)
            apply_claimed(due, now=moment, in_bulk=in_bulk)
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
        raise PermissionDenied("Only its author or an administrator may cancel this change.")
    if change.status != ScheduledChange.Status.PENDING:
        raise ValidationError(f"This change is {change.status}: only a pending change can be canceled.")
    change.status = ScheduledChange.Status.CANCELED
    return save_audited(change, actor=actor, reason=reason, source=source)
