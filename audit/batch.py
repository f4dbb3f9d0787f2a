"""The scheduled-change sweep's batch path: many due writes applied in memory, written in bulk.

`audit.scheduling` claims a batch of due changes and hands it to `apply_batch`. Each change
whose endpoint has a batch write (`WRITES`: the high-volume kinds) is parsed by that
endpoint's own input serializer, checked with the same permission functions the service
calls, validated with the model's own `full_clean()` and applied to rows loaded in bulk for
the whole batch, in order, each inside its own request scope and change context (its author,
its reason, source "task"), exactly as the replay would open them. `AuditedWrites` then
writes the targets, their history rows and audit entries, and the changes' own status with
theirs, in a few statements for the whole batch.

The batch path only ever takes the road the replay would take to a 2xx answer. Everything
else goes through the replay (`audit.scheduling.apply_change`), so its answer, and a
failure's error text, are the view's own:
- a change of another kind, or one whose body or path the batch write does not take;
- a change the batch write predicts the view would refuse (400, 403, 404): its objects are
  put back as they were, and it is replayed;
- before any replay, everything applied so far is written, so the replay sees what applying
  the changes one by one would have left; a replay that wrote something makes the batch
  reload its rows;
- if writing the batch raises (a constraint, a concurrent write), its savepoint is rolled
  back and its changes are replayed one by one; if loading the rows or applying one raises
  unexpectedly, the rest of the batch is replayed.

The bulk writes send no pre_save/post_save signals: the models written here have no
receivers but history's, whose rows `AuditedWrites` writes itself. A receiver added to one
of them must be mirrored here, or its kinds taken out of `WRITES`.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string
from rest_framework import serializers
from rest_framework.serializers import Serializer

from audit.bulk import AuditedWrites
from audit.context import change_context, request_scope
from audit.history import _snapshot
from audit.models import ScheduledChange

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

# (method, URL name) → the batch write of that endpoint. Order matters: rows are loaded in
# this order (customers, then subscriptions, then entitlements), by every worker alike, so
# two sweeps locking rows never wait on each other in a cycle.
WRITES: dict[tuple[str, str], str] = {
    ("PUT", "api:customer-detail"): "subscriptions.batch.CustomerWrite",
    ("PATCH", "api:customer-detail"): "subscriptions.batch.CustomerWrite",
    ("PATCH", "api:subscription-detail"): "subscriptions.batch.SubscriptionPatch",
    ("POST", "api:subscription-overrides"): "subscriptions.batch.OverrideCreate",
    ("PUT", "api:item-entitlement"): "catalog.batch.EntitlementPut",
}


class Replay(Exception):
    """This change leaves the batch path: the replay decides (and words) its outcome."""


class BatchWrite:
    """One scheduled write of a known endpoint, parsed; applied by `apply()` against the
    batch's rows. Subclasses mirror one API view's write, step by step."""

    change: ScheduledChange
    order: ClassVar[int] = 0

    @classmethod
    def parse(cls, method: str, kwargs: dict[str, Any], data: Any) -> BatchWrite | None:
        """The write, or None when the replay must take it (an invalid body: the view's 400)."""
        raise NotImplementedError

    @classmethod
    def prefetch(cls, writes: Sequence[BatchWrite], batch: Batch) -> None:
        """Load, in a few queries, every row `writes` will read (and lock what the view locks)."""

    def apply(self, batch: Batch) -> None:
        """Apply in memory, as the view would, or raise Replay, ValidationError or
        PermissionDenied before recording anything."""
        raise NotImplementedError


class Rows:
    """Rows a batch reads, loaded once for all its changes and shared by them, so a second
    change to one object sees the first one's result. Missing rows are remembered as None."""

    def __init__(self) -> None:
        self._maps: dict[tuple[type[models.Model], str], dict[Any, models.Model | None]] = {}
        self._by_pk: dict[type[models.Model], dict[Any, models.Model]] = {}
        self.extra: dict[str, Any] = {}

    def load(self, queryset: models.QuerySet, field: str, values: Iterable[Any]) -> None:
        """Load the rows of `queryset` whose `field` is one of `values` (those not held yet),
        in primary-key order (so row locks are taken in one order by every worker)."""
        found = self._maps.setdefault((queryset.model, field), {})
        wanted = {v for v in values if v not in found}
        if not wanted:
            return
        for row in queryset.filter(**{f"{field}__in": wanted}).order_by("pk"):
            found[getattr(row, field)] = row
            self.remember(row)
        for value in wanted:
            found.setdefault(value, None)

    def get(self, model: type[models.Model], field: str, value: Any) -> Any:
        try:
            return self._maps[(model, field)][value]
        except KeyError:
            raise Replay(f"{model._meta.label} {field}={value!r} was not loaded") from None

    def put(self, model: type[models.Model], field: str, value: Any, row: models.Model) -> None:
        self._maps.setdefault((model, field), {})[value] = row

    def remember(self, row: models.Model) -> None:
        """Keep `row` by primary key (the audit log names old foreign-key targets from these)."""
        if row.pk is not None:
            self._by_pk.setdefault(type(row), {})[row.pk] = row

    def known(self) -> dict[type[models.Model], dict[Any, models.Model]]:
        return self._by_pk


class Batch:
    """One run of `apply_batch`: the rows, the authors, the writes recorded and not yet made,
    and what the check API's caches must be told after commit."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.writes = AuditedWrites()
        self.pending: list[ScheduledChange] = []
        self.rows: Rows | None = None
        self.authors: dict[int, User] = {}
        self._customers: list[Any] = []
        self._catalog = False
        self._touched: dict[int, tuple[models.Model, dict[str, Any], dict[str, Any]]] | None = None
        self._cleaned: dict[tuple[models.Field, type, Any], tuple[bool, Any]] = {}

    # -- what handlers use

    def touch(self, instance: models.Model) -> None:
        """Call before changing `instance`: a refused change puts it back as it was."""
        if self._touched is not None and id(instance) not in self._touched:
            state = {k: _snapshot(v) for k, v in instance.__dict__.items() if k != "_state"}
            self._touched[id(instance)] = (instance, state, dict(instance._state.fields_cache))

    def full_clean(self, instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
        """`instance.full_clean()` without its unique and constraint checks, which query (the
        caller answers them from the rows held), and with each field that has choices checked
        once per value and batch: a country is checked against 250 countries each time."""
        exclude = set(exclude)
        errors: dict[str, list[str]] = {}
        for field in instance._meta.concrete_fields:
            if not field.choices or field.name in exclude:
                continue
            exclude.add(field.name)
            raw = getattr(instance, field.attname)
            if field.blank and raw in field.empty_values:
                continue  # as Model.clean_fields
            try:
                key = (field, type(raw), raw)
                outcome = self._cleaned.get(key)
            except TypeError:  # unhashable: no memo
                key, outcome = None, None
            if outcome is None:
                try:
                    outcome = (True, field.clean(raw, instance))
                except ValidationError as error:
                    outcome = (False, error.messages)
                if key is not None:
                    self._cleaned[key] = outcome
            if outcome[0]:
                setattr(instance, field.attname, outcome[1])
            else:
                errors[field.name] = outcome[1]
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            errors.update(error.message_dict)
        if errors:
            raise ValidationError(errors)

    def customer_changed(self, customer: Any) -> None:
        """A customer (object, or primary key) whose revision moves after commit."""
        self._customers.append(customer)

    def catalog_changed(self) -> None:
        self._catalog = True

    # -- the run

    def load(self, changes: Sequence[ScheduledChange], writes: Sequence[BatchWrite]) -> None:
        """Fresh authors (their permissions as of now) and every row the writes will read."""
        self.rows = Rows()
        ids = {change.created_by_id for change in changes}
        self.authors = User.objects.in_bulk(ids)
        for kind in sorted({type(w) for w in writes}, key=lambda kind: kind.order):
            kind.prefetch([w for w in writes if type(w) is kind], self)

    def forget(self) -> None:
        """The database moved under the rows held (a replay wrote): reload before going on."""
        self.rows = None
        self.authors = {}

    def apply(self, change: ScheduledChange, write: BatchWrite) -> bool:
        """Apply `change` in memory and record its writes and its status; False (and nothing
        changed) when the replay must decide it."""
        actor = self.authors.get(change.created_by_id)
        reason = _view_reason(change)
        if actor is None or not reason:
            return False
        with request_scope():
            self._touched = {}
            try:
                with change_context(actor=actor, reason=reason, source="task"):
                    write.apply(self)
            except (Replay, ValidationError, PermissionDenied):
                for instance, state, cache in self._touched.values():
                    model_state = instance._state
                    instance.__dict__.clear()
                    instance.__dict__.update(state, _state=model_state)
                    model_state.fields_cache = cache
                return False
            finally:
                self._touched = None
            # The change's own row: a copy, so that the change itself is left as claimed if
            # the batch ends up replayed.
            done = copy.copy(change)
            done.status, done.error, done.applied_at = ScheduledChange.Status.APPLIED, "", self.now
            with change_context(actor=actor, reason=change.reason, source="task"):
                self.writes.changed(done)
        self.pending.append(change)
        return True

    def flush(self) -> list[ScheduledChange]:
        """Write what is pending in one savepoint. Returns the changes to replay: none, or
        all of them if the bulk write was refused (then the rows held are dropped too)."""
        if not self.pending:
            return []
        pending, customers, catalog = self.pending, self._customers, self._catalog
        self.pending, self._customers, self._catalog = [], [], False
        try:
            with transaction.atomic():
                self.writes.flush()
                _move_revisions(customers, catalog)
        except Exception:
            log.warning("A batch of %s scheduled changes could not be written: replaying them", len(pending))
            self.writes = AuditedWrites()
            self.forget()
            return pending
        for change in pending:
            change.status, change.error, change.applied_at = ScheduledChange.Status.APPLIED, "", self.now
        return []

    def discard(self) -> list[ScheduledChange]:
        """Drop what is pending, unwritten; returns its changes (to replay)."""
        pending = self.pending
        self.pending, self._customers, self._catalog = [], [], False
        self.writes = AuditedWrites()
        self.forget()
        return pending


def apply_batch(changes: Sequence[ScheduledChange], *, now: datetime, replay: Callable) -> None:
    """Apply claimed `changes` in order, each exactly as `replay(change, now=now)` would (the
    module docstring says how); `replay` applies one change and returns whether it was applied."""
    if not batches_supported():
        for change in changes:
            replay(change, now=now)
        return
    writes = [_parse(change) for change in changes]
    batch = Batch(now)
    fallback = False
    for index, (change, write) in enumerate(zip(changes, writes, strict=True)):
        if write is not None and not fallback and batch.rows is None:
            rest = [(c, w) for c, w in zip(changes[index:], writes[index:], strict=True) if w is not None]
            try:
                with transaction.atomic():  # a failed query must not spoil the replays after it
                    batch.load([c for c, _ in rest], [w for _, w in rest])
            except Exception:
                log.exception(
                    "Rows for scheduled change %s could not be loaded: replaying the rest", change.pk
                )
                fallback = True
                batch.forget()
        if write is not None and not fallback:
            try:
                if batch.apply(change, write):
                    continue
            except Exception:
                log.exception("Scheduled change %s broke the batch path: replaying the rest", change.pk)
                fallback = True
                for earlier in batch.discard():
                    replay(earlier, now=now)
        for earlier in batch.flush():
            replay(earlier, now=now)
        if replay(change, now=now):
            batch.forget()
    for earlier in batch.flush():
        replay(earlier, now=now)


def batches_supported() -> bool:
    """The bulk writes speak PostgreSQL (COPY, UPDATE … FROM VALUES); elsewhere (the SQLite
    demo) every change is replayed."""
    return connection.vendor == "postgresql"


def _parse(change: ScheduledChange) -> BatchWrite | None:
    """The change as a batch write, or None: the replay takes it."""
    try:
        match = resolve(change.path)
    except Resolver404:
        return None
    dotted = WRITES.get((change.method, f"{match.namespace}:{match.url_name}"))
    if dotted is None or not isinstance(change.body, dict) or "?" in change.path:
        return None
    # The view reads the body the replay sends: the stored JSON, dumped and parsed again.
    raw = json.dumps(change.body)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and len(raw.encode("utf-8", "surrogatepass")) > limit:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    try:
        write = import_string(dotted).parse(change.method, match.kwargs, data)
    except Exception:  # whatever it is, the replay will say it as the view does
        log.exception("Scheduled change %s could not be parsed for the batch path", change.pk)
        return None
    if write is not None:
        write.change = change
    return write


_serializers = threading.local()


def validated(serializer_class: type[Serializer], data: Any, *, partial: bool = False) -> dict | None:
    """What `serializer_class(data=data, partial=partial)` validates, as is_valid() would run
    it, or None when it refuses the body. One serializer per class is kept and reused (its
    run_validation holds no state): building one deep-copies all its fields."""
    held = _serializers.__dict__.setdefault("held", {})
    serializer = held.get((serializer_class, partial))
    if serializer is None:
        serializer = held[(serializer_class, partial)] = serializer_class(partial=partial)
    try:
        return dict(serializer.run_validation(data))
    except serializers.ValidationError:
        return None


def _view_reason(change: ScheduledChange) -> str:
    """The reason the view reads from the replayed request's X-Change-Reason header."""
    from toolkit.rest.errors import ChangeReasonMissing
    from toolkit.rest.views import REASON_HEADER, change_reason

    try:
        return change_reason(SimpleNamespace(headers={REASON_HEADER: change.reason}))
    except ChangeReasonMissing:
        return ""


def _move_revisions(customers: list[Any], catalog: bool) -> None:
    """What each service does after its write, once for the whole batch."""
    from catalog import revisions

    ids = {c if isinstance(c, int) else c.pk for c in customers}
    if ids:
        revisions.customers_changed(ids)
    if catalog:
        revisions.catalog_changed()
