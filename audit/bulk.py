"""Many rows at once without escaping history: the rows, their history rows and their audit
entries are each inserted in batches, all with the change context's who, why, source and
request id. For seeders and imports of tens of thousands of rows; everything else saves
one object at a time through its service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from audit.history import field_changes, require_context
from audit.models import AuditEntry

M = TypeVar("M", bound=models.Model)


@transaction.atomic
def bulk_create_audited(model: type[M], objects: Sequence[M], *, batch_size: int = 2000) -> list[M]:
    """Insert `objects` (new, validated by the caller) with one history row and one audit
    entry each. Refused outside a change context, like any tracked write."""
    if not objects:
        return []
    context = require_context(objects[0])
    # A plain QuerySet: the tracked manager refuses bulk writes precisely so that they go here.
    created = models.QuerySet(model).bulk_create(objects, batch_size=batch_size)
    records = model._history_records
    history_model = model.history.model
    now = timezone.now()
    fields = records.fields_included(model)
    history_rows = [
        history_model(
            **{field.attname: getattr(obj, field.attname) for field in fields},
            history_date=now,
            history_type="+",
            history_user=context.actor,
            history_change_reason=context.reason,
            source=context.source,
            request_id=context.request_id,
        )
        for obj in created
    ]
    models.QuerySet(history_model).bulk_create(history_rows, batch_size=batch_size)
    content_type = ContentType.objects.get_for_model(model)
    models.QuerySet(AuditEntry).bulk_create(
        [
            AuditEntry(
                history_date=now,
                user=context.actor,
                source=context.source,
                request_id=context.request_id,
                reason=context.reason,
                content_type=content_type,
                object_id=str(obj.pk),
                object_repr=str(obj)[:200],
                action="+",
                changes=field_changes(obj, records, "+"),
                history_id=row.pk,
            )
            for obj, row in zip(created, history_rows, strict=True)
        ],
        batch_size=batch_size,
    )
    return created
