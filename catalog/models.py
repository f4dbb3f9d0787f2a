"""What can be sold: features, catalog items (plans, add-ons, charges), their entitlements,
and the tags that say which staff groups may edit a feature or segment."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_countries.fields import CountryField
from guardian.managers import GroupObjectPermissionManager, UserObjectPermissionManager
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from audit.history import AuditedHistoricalRecords, TrackedModel, TrackedQuerySet
from catalog.values import clean_value
from toolkit import periods
from toolkit.bounds import refuse_huge_numbers


class Tag(TrackedModel):
    """A label on features and segments naming the staff groups that may edit them."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="entitle_tags",
        help_text="Members of these groups may edit the features and segments with this tag.",
    )

    history = AuditedHistoricalRecords(m2m_fields=[groups])

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class Feature(TrackedModel):
    """Something a customer may be entitled to. Its key is hard-coded by applications, so
    it is a slug and never changes once created."""

    class Kind(models.TextChoices):
        SWITCH = "switch", "Switch (on or off)"
        QUANTITY = "quantity", "Quantity (one of a list of amounts)"
        RANGE = "range", "Range (a whole number between bounds)"
        CUSTOM = "custom", "Custom (one of an ordered list of levels)"
        METERED = "metered", "Metered (a usage limit per period)"

    class Period(models.TextChoices):
        DAY = periods.DAY, "Day"
        WEEK = periods.WEEK, "Week (from Monday)"
        MONTH = periods.MONTH, "Month"
        YEAR = periods.YEAR, "Year"

    class PeriodAnchor(models.TextChoices):
        CALENDAR = periods.CALENDAR, "The calendar (UTC)"
        BILLING_CYCLE = periods.BILLING_CYCLE, "The subscription's billing cycle"

    class LimitType(models.TextChoices):
        HARD = "hard", "Hard: consumption beyond the limit is refused"
        SOFT = "soft", "Soft: consumption beyond the limit is allowed and reported"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    class Fallback(models.TextChoices):
        DENY = "deny", "Deny"
        ALLOW = "allow", "Allow"
        LAST_KNOWN = "last_known", "Last known answer"

    key = models.SlugField(
        max_length=64,
        unique=True,
        help_text="The handle applications use, such as max-members. It cannot change later.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SWITCH)
    levels = models.JSONField(
        default=list,
        blank=True,
        validators=[refuse_huge_numbers],
        help_text="Quantity: the amounts on offer, e.g. [5, 10, 20]. Custom: the levels from "
        'lowest to highest, e.g. ["email", "email+chat"].',
    )
    min_value = models.IntegerField(null=True, blank=True, help_text="Range features only.")
    max_value = models.IntegerField(null=True, blank=True, help_text="Range features only.")
    allow_unlimited = models.BooleanField(default=False, help_text="Quantity and metered features only.")
    period = models.CharField(
        max_length=8,
        choices=Period.choices,
        blank=True,
        help_text="Metered features only: how long usage counts before it starts again from zero.",
    )
    period_anchor = models.CharField(
        max_length=16,
        choices=PeriodAnchor.choices,
        blank=True,
        help_text="Metered features only: whether periods follow the calendar or each "
        "subscription's billing cycle (its current period's end).",
    )
    limit_type = models.CharField(
        max_length=8,
        choices=LimitType.choices,
        blank=True,
        help_text="Metered features only.",
    )
    markets = CountryField(
        multiple=True,
        blank=True,
        help_text="Countries where the feature may be offered. Empty means everywhere.",
    )
    keep_when_delinquent = models.BooleanField(
        default=False,
        help_text="A customer past the grace period of an unpaid subscription keeps this feature.",
    )
    fallback = models.CharField(
        max_length=16,
        choices=Fallback.choices,
        default=Fallback.DENY,
        help_text="What applications should do when they cannot reach Entitle.",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="features")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    history = AuditedHistoricalRecords(m2m_fields=[tags])

    class Meta:
        ordering = ["key"]
        permissions = [("grant_feature", "Can grant or revoke the feature on subscriptions")]
        constraints = [
            models.CheckConstraint(
                name="feature_range_bounds",
                condition=~Q(kind="range")
                | Q(min_value__isnull=False, max_value__isnull=False, min_value__lte=models.F("max_value")),
            ),
            models.CheckConstraint(
                name="feature_unlimited_only_for_numbers",
                condition=Q(kind__in=["quantity", "metered"]) | Q(allow_unlimited=False),
            ),
            models.CheckConstraint(
                name="feature_metered_has_period",
                condition=(Q(kind="metered") & ~Q(period="") & ~Q(period_anchor="") & ~Q(limit_type=""))
                | (~Q(kind="metered") & Q(period="", period_anchor="", limit_type="")),
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def is_archived(self) -> bool:
        return self.status == self.Status.ARCHIVED

    @property
    def is_metered(self) -> bool:
        return self.kind == self.Kind.METERED

    def clean(self) -> None:
        errors: dict[str, str] = {}
        loaded_key = getattr(self, "_loaded_values", {}).get("key")
        if self.pk and loaded_key and loaded_key != self.key:
            errors["key"] = "A feature's key never changes: applications depend on it."
        levels = self.levels if self.levels is not None else []
        if not isinstance(levels, list):
            errors["levels"] = "Levels must be a list."
        elif self.kind == self.Kind.QUANTITY:
            if not levels or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in levels):
                errors["levels"] = (
                    "A quantity feature needs a list of positive whole numbers, e.g. [5, 10, 20]."
                )
            elif len(set(levels)) != len(levels):
                errors["levels"] = "Each level may appear only once."
            else:
                self.levels = sorted(levels)
        elif self.kind == self.Kind.CUSTOM:
            if not levels or any(not isinstance(v, str) or not v.strip() for v in levels):
                errors["levels"] = (
                    'A custom feature needs its levels as texts, lowest first, e.g. ["email", "email+chat"].'
                )
            elif len(set(levels)) != len(levels):
                errors["levels"] = "Each level may appear only once."
        elif levels:
            errors["levels"] = f"A {self.kind} feature has no levels."
        if self.kind == self.Kind.RANGE:
            if self.min_value is None or self.max_value is None:
                errors["min_value"] = "A range feature needs both a minimum and a maximum."
            elif self.min_value > self.max_value:
                errors["max_value"] = "The maximum must not be below the minimum."
        elif self.min_value is not None or self.max_value is not None:
            errors["min_value"] = "Only range features have a minimum and maximum."
        if self.allow_unlimited and self.kind not in (self.Kind.QUANTITY, self.Kind.METERED):
            errors["allow_unlimited"] = "Only quantity and metered features can be unlimited."
        metering = {"period": self.period, "period_anchor": self.period_anchor, "limit_type": self.limit_type}
        if self.kind == self.Kind.METERED:
            for name, value in metering.items():
                if not value:
                    errors[name] = f"A metered feature needs its {self._meta.get_field(name).verbose_name}."
        else:  # left over from a kind changed in the same edit: only metered features count usage
            self.period = self.period_anchor = self.limit_type = ""
        if errors:
            raise ValidationError(errors)


class Item(TrackedModel):
    """A plan, add-on or charge of the product catalog. A legacy plan is grandfathered: its
    subscriptions keep it, but no new subscription may be put on it."""

    class Kind(models.TextChoices):
        PLAN = "plan", "Plan"
        ADDON = "addon", "Add-on"
        CHARGE = "charge", "Charge"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        LEGACY = "legacy", "Legacy (grandfathered)"
        ARCHIVED = "archived", "Archived"

    key = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PLAN)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    rank = models.IntegerField(default=0, help_text="Plans: a higher rank is a higher tier.")
    grace_days = models.PositiveIntegerField(
        default=0, help_text="Plans: days an unpaid subscription keeps full access."
    )
    external_id = models.CharField(
        max_length=128, blank=True, help_text="The billing system's id for this item."
    )
    superseded_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supersedes",
    )

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["kind", "rank", "key"]
        verbose_name = "plan, add-on or charge"
        verbose_name_plural = "plans, add-ons and charges"
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="item_external_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def accepts_new_subscriptions(self) -> bool:
        return self.kind == self.Kind.PLAN and self.status == self.Status.ACTIVE


class Entitlement(TrackedModel):
    """The level of one feature that one item gives. A change applies at once to every
    subscription on the item."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="entitlements")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="entitlements")
    value = models.JSONField(
        validators=[refuse_huge_numbers],
        help_text='true for a switch; a level or "unlimited" for a quantity; a number for a '
        'range; a level for a custom feature; the limit per period (or "unlimited") for a metered one.',
    )

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["item", "feature"]
        constraints = [
            models.UniqueConstraint(fields=["item", "feature"], name="entitlement_unique_per_item"),
        ]

    def __str__(self) -> str:
        return f"{self.item.key} → {self.feature.key}"

    def clean(self) -> None:
        if self.feature_id is None:
            return
        try:
            self.value = clean_value(self.feature, self.value)
        except ValidationError as error:
            raise ValidationError({"value": error.messages}) from error


class FeatureUserPermission(UserObjectPermissionBase):
    """A one-off object permission on one feature for one user (guardian, direct key)."""

    content_object = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="user_permissions")

    objects = UserObjectPermissionManager.from_queryset(TrackedQuerySet)()
    history = AuditedHistoricalRecords()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "feature permission for a user"
        verbose_name_plural = "feature permissions for users"


class FeatureGroupPermission(GroupObjectPermissionBase):
    """An object permission on one feature for one group: handed out by the feature's tags
    (`via_tags`, kept in step by the services) or granted one-off."""

    content_object = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="group_permissions")
    via_tags = models.BooleanField(default=False, editable=False)

    objects = GroupObjectPermissionManager.from_queryset(TrackedQuerySet)()
    history = AuditedHistoricalRecords()

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "feature permission for a group"
        verbose_name_plural = "feature permissions for groups"
