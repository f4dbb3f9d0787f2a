"""The last step of every audited write: validate, then save or delete inside the change
context. Services check permissions first and call these."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.db import models

from audit.context import change_context

if TYPE_CHECKING:
    from django.contrib.auth.models import User

M = TypeVar("M", bound=models.Model)


def save_audited(instance: M, *, actor: User | None, reason: str, source: str) -> M:
    """Run model validation and save, recorded with who, why and from where."""
    with change_context(actor=actor, reason=reason, source=source):
        instance.full_clean()
        instance.save()
    return instance


def delete_audited(instance: models.Model, *, actor: User | None, reason: str, source: str) -> None:
    """Delete, recorded with who, why and from where (history keeps the last values)."""
    with change_context(actor=actor, reason=reason, source=source):
        instance.delete()
