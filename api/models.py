"""What the HTTP API keeps of its own: how often applications checked each feature."""

from __future__ import annotations

from django.db import models


class CheckCount(models.Model):
    """Checks of one feature on one day (UTC), counted in Redis on the hot path and flushed
    here in batches, so a check never writes to the database."""

    feature_key = models.SlugField(max_length=64)
    day = models.DateField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "feature_key"]
        constraints = [models.UniqueConstraint(fields=["feature_key", "day"], name="check_count_once_per_day")]

    def __str__(self) -> str:
        return f"{self.feature_key} on {self.day}: {self.count}"
