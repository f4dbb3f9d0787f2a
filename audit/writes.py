"""The last step of every audited write: validate, then save or delete inside the change
context. Services check permissions first and call these. Inside a bulk run
(`audit.bulk.BulkRun`) a save is validated and recorded, and written with the run's others."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from django.db import models, transaction

from audit import bulk
from toolkit.change_context import change_context

if TYPE_CHECKING:
    from django.contrib.auth.models import User

M = TypeVar("M", bound=models.Model)
P = ParamSpec("P")
R = TypeVar("R")


def atomic(service: Callable[P, R]) -> Callable[P, R]:
    """A service's transaction (`transaction.atomic`), except inside a bulk run: there its
    writes reach the database only when the run is flushed, and a write that raises leaves
    nothing behind, so a savepoint of its own would only cost two queries."""

    @functools.wraps(service)
    def atomically(*args: P.args, **kwargs: P.kwargs) -> R:
        if bulk.current_run() is not None:
            return service(*args, **kwargs)
        with transaction.atomic():
            return service(*args, **kwargs)

    return atomically


def save_audited(instance: M, *, actor: User | None, reason: str, source: str) -> M:
    """Run model validation and save, recorded with who, why and from where."""
    with change_context(actor=actor, reason=reason, source=source):
        run = bulk.current_run()
        if run is not None:
            run.save(instance)
            return instance
        instance.full_clean()
        instance.save()
    return instance


def delete_audited(instance: models.Model, *, actor: User | None, reason: str, source: str) -> None:
    """Delete, recorded with who, why and from where (history keeps the last values)."""
    if bulk.current_run() is not None:
        raise bulk.NotHeld("A delete is not made in bulk.")
    with change_context(actor=actor, reason=reason, source=source):
        instance.delete()
