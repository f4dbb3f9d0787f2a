"""The project's history wiring: one `HistoricalRecords` for every domain model.

Each history row holds who (`history_user`), when (`history_date`), what (the field values)
and why (`history_change_reason`), plus the `source` of the write and the `request_id` shared
by every row of one request. A tracked model written outside a change context raises
`ChangeReasonRequired`: there is no path that records history without a reason.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from simple_history.models import HistoricalRecords

from audit.context import ChangeReasonRequired, current


class AuditFields(models.Model):
    """Columns every history table adds to simple-history's own."""

    source = models.CharField(max_length=16, db_index=True)
    request_id = models.UUIDField(db_index=True)

    class Meta:
        abstract = True


class AuditedHistoricalRecords(HistoricalRecords):
    """simple-history, but reason, user, source and request id come from the change context."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("bases", [AuditFields])
        super().__init__(**kwargs)

    def post_save(self, instance, created, using=None, **kwargs):
        # Saving an unchanged object records nothing: compare with the values loaded from
        # the database (TrackedModel keeps them), which costs no query.
        if not created and not kwargs.get("raw", False) and not _has_changes(instance, self):
            return
        super().post_save(instance, created, using=using, **kwargs)

    def create_historical_record(self, instance, history_type, using=None):
        context = current()
        if context is None:
            raise ChangeReasonRequired(
                f"{instance._meta.verbose_name} {instance.pk} was written without a change "
                "reason: open audit.context.change_context(actor=..., reason=..., source=...)."
            )
        instance._history_user = context.actor
        instance._change_reason = context.reason
        super().create_historical_record(instance, history_type, using=using)
        if hasattr(instance, "remember_loaded_values"):
            instance.remember_loaded_values()


def stamp_history_row(sender, history_instance, **kwargs) -> None:
    """Copy source and request id from the change context onto a history row about to be
    saved (connected to simple-history's `pre_create_historical_record`)."""
    context = current()
    if context is not None and isinstance(history_instance, AuditFields):
        history_instance.source = context.source
        history_instance.request_id = context.request_id


def _has_changes(instance: models.Model, records: HistoricalRecords) -> bool:
    loaded = getattr(instance, "_loaded_values", None)
    if loaded is None:
        return True
    return any(
        loaded.get(field.attname) != getattr(instance, field.attname)
        for field in records.fields_included(instance)
    )


class TrackedQuerySet(models.QuerySet):
    """Refuses the bulk writes that would bypass history (NOTES.md)."""

    def update(self, **kwargs):
        raise ChangeReasonRequired(
            f"QuerySet.update() on {self.model._meta.label} writes no history: save each "
            "object through its service, or use audit.bulk helpers."
        )

    def bulk_update(self, *args, **kwargs):
        raise ChangeReasonRequired(
            f"bulk_update() on {self.model._meta.label} writes no history: use audit.bulk."
        )

    def bulk_create(self, *args, **kwargs):
        raise ChangeReasonRequired(
            f"bulk_create() on {self.model._meta.label} writes no history: use audit.bulk."
        )


class TrackedModel(models.Model):
    """A domain model with full history. Remembers the values it was loaded with, so that
    saving it unchanged records nothing."""

    objects = TrackedQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_values = dict(zip(field_names, values, strict=True))
        return instance

    def remember_loaded_values(self) -> None:
        self._loaded_values = {
            field.attname: getattr(self, field.attname) for field in self._meta.concrete_fields
        }
