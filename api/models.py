"""What the HTTP API keeps of its own: the keys applications and billing systems call with,
and how often applications checked each feature."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class CheckCount(models.Model):
    """Checks of one feature on one day (UTC), counted in Redis on the hot path and flushed
    here in batches, so a check never writes to the database."""

    feature_key = models.SlugField(max_length=64)
    day = models.DateField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "feature_key"]
        constraints = [
            models.UniqueConstraint(fields=["feature_key", "day"], name="check_count_once_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.feature_key} on {self.day}: {self.count}"


class CheckCountBatch(models.Model):
    """A batch of counts already added to `CheckCount`: a flush that died after committing
    is not counted twice when the batch is seen again."""

    batch_id = models.CharField(max_length=64, unique=True)
    applied_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.batch_id


class APIKey(AbstractAPIKey):
    """A key an application or billing system calls the API with. Only a SHA-512 hash is
    stored; the key is shown once, when created. It acts as its owner: writes run with the
    owner's permissions and appear in history as the owner."""

    class Scope(models.TextChoices):
        READ = "read", "Read: entitlement checks and reads"
        WRITE = "write", "Write: reads and writes"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="Writes run with this user's permissions and appear in history as this user.",
    )
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests per minute allowed for this key; empty means the default (API_RATE_PER_MINUTE).",
    )
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Updated in batches, within a few minutes."
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def expires(self):
        return self.expiry_date

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
