"""Derived data for the dashboard: who has which feature, through which source,
counted for every customer by resolving them all in the background. Plain models, not
history-tracked: every row can be recomputed from the audited ones at any time."""

from __future__ import annotations

from django.db import models


class UsageSnapshot(models.Model):
    """One recomputation of feature usage: every customer resolved at `computed_at`. The
    dashboard reads the latest complete one; older ones are removed when a new one completes."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    computed_at = models.DateTimeField(help_text="The instant every customer was resolved at.")
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    customers = models.PositiveIntegerField(default=0, help_text="Customers resolved.")
    batches = models.PositiveIntegerField(default=0)
    countries = models.JSONField(default=list, blank=True, help_text="Customer countries present.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"Feature usage at {self.computed_at:%Y-%m-%d %H:%M} UTC ({self.status})"

    @property
    def duration(self):
        return self.finished_at - self.computed_at if self.finished_at else None


class FeatureUsage(models.Model):
    """How many customers of one country and one set of live plans got one answer shape for a
    feature: on or off, and the kind (and key) of the source that decided it. Summing rows
    answers every filter of the dashboard (plan, market, tag via the feature) without
    resolving anyone."""

    class SourceKind(models.TextChoices):
        PLAN = "plan", "Plan"
        ADDON = "addon", "Add-on"
        SEGMENT = "segment", "Segment"
        OVERRIDE = "override", "Override"
        DEFAULT = "default", "Default (nothing gives it)"
        MARKET = "market", "Outside its markets"
        ARCHIVED = "archived", "Archived"

    snapshot = models.ForeignKey(UsageSnapshot, on_delete=models.CASCADE, related_name="rows")
    feature_key = models.SlugField(max_length=64)
    enabled = models.BooleanField()
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_key = models.CharField(
        max_length=64, blank=True, help_text="The plan, add-on or segment key; empty for the others."
    )
    # The keys of the customer's live (or delinquent) subscriptions' plans, sorted and wrapped in
    # commas (",basic,business,"; "" for none), so "has plan X" is `contains ",X,"` and a
    # customer with two plans is still counted once.
    plans = models.TextField(blank=True)
    country = models.CharField(max_length=2, blank=True)
    customers = models.PositiveIntegerField()

    class Meta:
        ordering = ["feature_key", "-enabled", "source_kind", "source_key"]
        indexes = [models.Index(fields=["snapshot", "feature_key"])]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.feature_key} {state} via {self.source_kind}: {self.customers}"


class LimitUsage(models.Model):
    """A customer at NEAR per cent or more of a metered limit in its current period, as the
    refresh found it (`usage.selectors`): the dashboard's "at or near a limit" table. Only
    those customers get a row, so the table stays small however many customers have a
    metered feature."""

    snapshot = models.ForeignKey(UsageSnapshot, on_delete=models.CASCADE, related_name="limits")
    customer = models.ForeignKey("subscriptions.Customer", on_delete=models.CASCADE, related_name="+")
    feature_key = models.SlugField(max_length=64)
    period_start = models.DateTimeField()
    resets_at = models.DateTimeField()
    used = models.BigIntegerField()
    limit = models.BigIntegerField(help_text="The period's limit, top-ups included.")
    hard = models.BooleanField()
    # used / limit, stored for ordering: the fullest first (a soft limit lets it pass 1).
    share = models.FloatField()
    plans = models.TextField(blank=True)  # as FeatureUsage.plans
    country = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ["-share", "feature_key", "customer_id"]
        indexes = [models.Index(fields=["snapshot", "-share"], name="limitusage_fullest_first")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.feature_key}: {self.used:,} of {self.limit:,}"
