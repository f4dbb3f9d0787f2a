"""The audit log: one row per history row of any tracked model, with the fields that
changed, old → new, so the log across all models is one indexed table."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from audit.history import AuditedHistoricalRecords, TrackedModel, field_changes
from toolkit.bounds import refuse_far_date, refuse_huge_numbers
from toolkit.change_context import SOURCES

SOURCE_CHOICES = [(source, source) for source in SOURCES]


class AuditEntry(models.Model):
    """Who changed which object, when, from where, why, and what changed. Written by
    `write_audit_entry` (below) in the same transaction as the history row it mirrors; never
    edited."""

    class Action(models.TextChoices):
        CREATED = "+", "Created"
        CHANGED = "~", "Changed"
        DELETED = "-", "Deleted"

    history_date = models.DateTimeField()  # indexed newest first, with the id (Meta.indexes)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The fixed list of sources as choices: the admin then filters over them without asking the
    # database for the distinct values of 371k rows (SELECT DISTINCT took ~100 ms a page).
    source = models.CharField(max_length=16, choices=SOURCE_CHOICES)  # indexed with the date (Meta)
    request_id = models.UUIDField(db_index=True)
    reason = models.TextField()
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=1, choices=Action.choices)
    changes = models.JSONField(default=list)  # [{"field": ..., "old": ..., "new": ...}]
    # The history row this entry mirrors; none for things without a history table (audit.records).
    history_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-history_date", "-id"]
        verbose_name = "change"
        verbose_name_plural = "Audit log"
        indexes = [
            models.Index(fields=["content_type", "object_id", "-history_date"]),
            models.Index(fields=["user", "-history_date"]),
            # The admin's order, newest first with the id breaking ties, unfiltered and filtered by
            # source: a page is then read off an index (the filtered page took 300-550 ms at
            # 371k entries, 0.1 ms with it). They replace the single-column indexes on
            # `history_date` and `source`, which their leading columns serve as well.
            models.Index(fields=["-history_date", "-id"], name="auditentry_newest_first"),
            models.Index(fields=["source", "-history_date", "-id"], name="auditentry_source_newest"),
        ]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_repr}"


class ScheduledChange(TrackedModel):
    """A write to make later: the API request that would make it (any write the API can make),
    when, why and by whom. Swept by Celery beat and made exactly once, as its author, through
    the endpoint's own `Write`: the same serializer, services, validation and permission
    checks as the immediate write (`audit.scheduling`)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    body = models.JSONField(null=True, blank=True, validators=[refuse_huge_numbers])
    effective_at = models.DateTimeField(validators=[refuse_far_date])
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["effective_at", "id"]
        indexes = [
            # The sweep's query: due pending changes, oldest first.
            models.Index(fields=["effective_at"], condition=models.Q(status="pending"), name="scheduled_due"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} at {self.effective_at:%Y-%m-%d %H:%M} UTC"


def write_audit_entry(sender, instance, history_instance, **kwargs) -> None:
    """Mirror a new history row into the audit log (connected to simple-history's
    `post_create_historical_record`)."""
    AuditEntry.objects.create(
        history_date=history_instance.history_date,
        user_id=history_instance.history_user_id,
        source=history_instance.source,
        request_id=history_instance.request_id,
        reason=history_instance.history_change_reason,
        content_type=ContentType.objects.get_for_model(type(instance)),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        action=history_instance.history_type,
        changes=field_changes(instance, type(instance)._history_records, history_instance.history_type),
        history_id=history_instance.pk,
    )
