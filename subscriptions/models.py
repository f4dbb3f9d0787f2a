"""Who bought what: customers, their subscriptions with add-ons, the overrides that grant
or revoke one feature on one subscription for a while, and the top-ups that raise a metered
limit for one period (docs/domain.md, docs/usage.md)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django_countries.fields import CountryField

from audit.history import AuditedHistoricalRecords, TrackedModel
from catalog.models import Feature, Item
from catalog.values import LARGEST_WHOLE_NUMBER, clean_grant_value, display_value
from toolkit.bounds import refuse_far_date, refuse_huge_numbers
from toolkit.upsert import NotHeld, rows_of


class Customer(TrackedModel):
    """An account of the applications, known to them by `external_id`."""

    external_id = models.CharField(
        max_length=128, unique=True, help_text="The applications' id for this account."
    )
    name = models.CharField(max_length=200)
    country = CountryField(blank=True)
    traits = models.JSONField(
        default=dict,
        blank=True,
        validators=[refuse_huge_numbers],
        help_text='Free attributes for segment rules, e.g. {"industry": "media"}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["external_id"]
        # On PostgreSQL, `external_id` and `name` also have trigram indexes for the admin's
        # search (migration 0002): made there, for PostgreSQL only, so not listed here.

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"

    def clean(self) -> None:
        if not isinstance(self.traits, dict):
            raise ValidationError({"traits": 'Traits must be an object, e.g. {"industry": "media"}.'})


class Subscription(TrackedModel):
    """A customer's subscription to one plan, with add-ons. Live while trialing (until the
    trial ends), active, or past due (full access within the plan's grace days)."""

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        PAUSED = "paused", "Paused"
        CANCELED = "canceled", "Canceled"
        EXPIRED = "expired", "Expired"

    external_id = models.CharField(max_length=128, unique=True, help_text="The billing system's id.")
    customer = models.ForeignKey("Customer", on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey(
        Item, on_delete=models.PROTECT, related_name="subscriptions", limit_choices_to={"kind": "plan"}
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    trial_ends_at = models.DateTimeField(null=True, blank=True, validators=[refuse_far_date])
    current_period_end = models.DateTimeField(null=True, blank=True, validators=[refuse_far_date])
    past_due_since = models.DateTimeField(null=True, blank=True, validators=[refuse_far_date])
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["external_id"]
        indexes = [models.Index(fields=["status", "trial_ends_at"])]

    def __str__(self) -> str:
        return self.external_id

    def clean(self) -> None:
        errors = {}
        if self.plan_id is not None:
            if self.plan.kind != Item.Kind.PLAN:
                errors["plan"] = f"{self.plan.key} is not a plan."
            loaded_plan = getattr(self, "_loaded_values", {}).get("plan_id")
            if self.plan_id != loaded_plan and self.plan.status != Item.Status.ACTIVE:
                errors["plan"] = (
                    f"{self.plan.key} is {self.plan.status}: no new subscription may be put on it."
                )
        if self.status == self.Status.TRIALING and self.trial_ends_at is None:
            errors["trial_ends_at"] = "A trialing subscription needs the date its trial ends."
        if self.status == self.Status.PAST_DUE and self.past_due_since is None:
            errors["past_due_since"] = "A past-due subscription needs the date payment became due."
        if errors:
            raise ValidationError(errors)


class SubscriptionAddon(TrackedModel):
    """An add-on (or charge) bought on a subscription; its entitlements count once per unit."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="addons")
    addon = models.ForeignKey(
        Item,
        on_delete=models.PROTECT,
        verbose_name="add-on",
        related_name="subscription_addons",
        limit_choices_to={"kind__in": ["addon", "charge"]},
    )
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["subscription", "addon"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "addon"], name="addon_once_per_subscription"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="addon_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.addon.key}"

    def clean(self) -> None:
        if self.addon_id is None:
            return
        if self.addon.kind not in (Item.Kind.ADDON, Item.Kind.CHARGE):
            raise ValidationError({"addon": f"{self.addon.key} is a {self.addon.kind}, not an add-on."})
        loaded_addon = getattr(self, "_loaded_values", {}).get("addon_id")
        if self.addon_id != loaded_addon and self.addon.status != Item.Status.ACTIVE:
            raise ValidationError(
                {"addon": f"{self.addon.key} is {self.addon.status}: it is no longer sold."}
            )


class Override(TrackedModel):
    """Grants (with a value) or revokes one feature on one subscription, between
    `valid_from` and `valid_until` (either may be open). A grant's value fits the feature's
    kind, not its levels: a negotiated 40 seats is fine where plans offer 5, 10, 25, 50."""

    # The database's exclusion constraint that refuses overlapping windows when two writes race
    # past clean() (PostgreSQL; migration 0004).
    NO_OVERLAP = "override_no_overlap"

    class Effect(models.TextChoices):
        GRANT = "grant", "Grant"
        REVOKE = "revoke", "Revoke"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="overrides")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="overrides")
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.GRANT)
    value = models.JSONField(
        null=True,
        blank=True,
        validators=[refuse_huge_numbers],
        help_text="The granted value; empty for a revoke.",
    )
    valid_from = models.DateTimeField(
        null=True, blank=True, validators=[refuse_far_date], help_text="In UTC. Empty: from now on."
    )
    valid_until = models.DateTimeField(
        null=True, blank=True, validators=[refuse_far_date], help_text="In UTC. Empty: until removed."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="override_window_ordered",
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_from__lt=F("valid_until")),
            ),
            models.CheckConstraint(
                name="override_revoke_has_no_value",
                condition=Q(effect="grant") | Q(value__isnull=True),
            ),
        ]
        indexes = [
            models.Index(fields=["valid_until"]),
            models.Index(fields=["subscription", "feature"]),
            # The admin's changelist order (newest first, the primary key breaking ties): without
            # it PostgreSQL sorts every override to show 50 (370 ms at 67k overrides; 1 ms with).
            models.Index(fields=["-created_at", "-id"], name="override_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.effect} {self.feature.key} on {self.subscription.external_id}"

    @property
    def in_words(self) -> str:
        """What it does, as people read it: `grant 40`, `grant on`, `revoke`."""
        return "revoke" if self.effect == self.Effect.REVOKE else f"grant {display_value(self.value)}"

    def clean(self) -> None:
        errors: dict[str, str | list[str]] = {}
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            errors["valid_until"] = "The end must come after the start."
        if self.feature_id is not None:
            if self.effect == self.Effect.REVOKE:
                self.value = None
            else:
                try:
                    self.value = clean_grant_value(self.feature, self.value)
                except ValidationError as error:
                    errors["value"] = error.messages
        if not errors and self.subscription_id and self.feature_id:
            overlapping = self.overlapping()
            if overlapping is not None and overlapping.pk is None:
                # One made in the same bulk run, not written yet: made on its own, this one
                # names it by its id.
                raise NotHeld("An override overlapping one not written yet")
            if overlapping is not None:
                errors["valid_from"] = (
                    f"This window overlaps override #{overlapping.pk} of {self.feature.key} on "
                    "this subscription: end that one first, or change the dates."
                )
        if errors:
            raise ValidationError(errors)

    def overlapping(self) -> Override | None:
        """The first other override of the same feature on the same subscription whose window
        meets this one's (open ends reach forever), if any."""
        others = rows_of(Override.objects, subscription_id=self.subscription_id, feature_id=self.feature_id)
        for other in sorted(others, key=_newest_first):
            if other is self or (self.pk is not None and other.pk == self.pk):
                continue
            starts_before_my_end = (
                self.valid_until is None or other.valid_from is None or other.valid_from < self.valid_until
            )
            ends_after_my_start = (
                self.valid_from is None or other.valid_until is None or other.valid_until > self.valid_from
            )
            if starts_before_my_end and ends_after_my_start:
                return other
        return None

    def is_live(self, at) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_until is None or at < self.valid_until
        )


def _newest_first(override: Override) -> tuple:
    return (-(override.created_at.timestamp() if override.created_at else 0), -(override.pk or 0))


class TopUp(TrackedModel):
    """A one-off addition to one customer's limit of a metered feature, for the usage period
    that starts at `period_start` only: goodwill or a negotiated burst, granted by support with
    a reason. It raises a limit the customer has; it gives nothing to a customer without one."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="topups")
    feature = models.ForeignKey(
        Feature, on_delete=models.PROTECT, related_name="topups", limit_choices_to={"kind": "metered"}
    )
    period_start = models.DateTimeField(help_text="The start of the usage period it adds to (UTC).")
    amount = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(LARGEST_WHOLE_NUMBER)],
        help_text="Units added to this period's limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "top-up"
        indexes = [models.Index(fields=["customer", "feature", "period_start"])]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=1), name="topup_amount_positive")]

    def __str__(self) -> str:
        return f"+{self.amount:,} {self.feature.key} for {self.customer.external_id}"
