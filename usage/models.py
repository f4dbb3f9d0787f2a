"""The durable record of metered usage (docs/usage.md)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalog.models import Feature
from subscriptions.models import Customer


class Consumption(models.Model):
    """One accepted consumption (`consume`) or reported usage (`usage`) of a metered feature.

    Written in the same step that counts it, so PostgreSQL holds everything a caller was told
    was accepted; the Redis counters are rebuilt from these rows whenever they are lost. Rows
    are facts, not changes someone made: they are never edited, and carry no history."""

    class Kind(models.TextChoices):
        CONSUME = "consume", "Consumed (checked against the limit)"
        REPORT = "report", "Reported after the fact"

    # No index of their own: every read goes by customer first (`consumption_period`), and a row
    # is written on every consume, so each index costs the hot path.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consumptions", db_index=False
    )
    feature = models.ForeignKey(
        Feature, on_delete=models.PROTECT, related_name="consumptions", db_index=False
    )
    period_start = models.DateTimeField(help_text="The start of the usage period it counts in (UTC).")
    quantity = models.BigIntegerField()
    used_after = models.BigIntegerField(help_text="The period's total once this was counted.")
    limit = models.BigIntegerField(null=True, blank=True, help_text="The limit then; empty: unlimited.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CONSUME)
    idempotency_key = models.CharField(max_length=128, blank=True)
    happened_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "feature", "period_start"], name="consumption_period"),
            models.Index(
                fields=["customer", "feature", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="consumption_idempotency",
            ),
        ]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="consumption_positive")]

    def __str__(self) -> str:
        return f"{self.quantity:,} {self.feature_id} by {self.customer_id}"
