"""Groups of customers (segments) and the ordered targeting rules that serve a feature's
value to them (docs/domain.md)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from guardian.managers import GroupObjectPermissionManager, UserObjectPermissionManager
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from audit.history import AuditedHistoricalRecords, TrackedModel, TrackedQuerySet
from catalog.models import Feature, Tag
from catalog.values import clean_value, display_value
from segments import matching
from toolkit.bounds import refuse_huge_numbers


class Segment(TrackedModel):
    """A group of customers: the included list, plus everyone not excluded whom any rule
    matches. A rule is the set of conditions sharing a rule number; all must hold."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="segments")

    history = AuditedHistoricalRecords(m2m_fields=[tags])

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class SegmentMember(TrackedModel):
    """A customer listed explicitly in a segment, as included or as excluded."""

    class Kind(models.TextChoices):
        INCLUDED = "included", "Included"
        EXCLUDED = "excluded", "Excluded"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(
        "subscriptions.Customer", on_delete=models.CASCADE, related_name="segment_memberships"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INCLUDED)

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["segment", "kind", "customer"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_once"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} {self.kind} in {self.segment}"


class Condition(TrackedModel):
    """One test on a customer attribute. Conditions with the same rule number form a rule."""

    class Attribute(models.TextChoices):
        COUNTRY = matching.COUNTRY, "Country"
        PLAN = matching.PLAN, "Plan (of a live subscription)"
        PLAN_RANK = matching.PLAN_RANK, "Plan rank (of a live subscription)"
        STATUS = matching.STATUS, "Subscription status"

    class Op(models.TextChoices):
        EQ = "eq", "equals"
        NEQ = "neq", "does not equal"
        IN = "in", "is one of"
        NOT_IN = "not_in", "is none of"
        GTE = "gte", "is at least"
        LTE = "lte", "is at most"
        CONTAINS = "contains", "contains"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    rule = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Conditions with the same rule number must all hold; any rule may match.",
    )
    attribute = models.CharField(
        max_length=100, help_text="country, plan, plan_rank, status, or traits.<name>."
    )
    op = models.CharField(max_length=16, choices=Op.choices)
    value = models.JSONField(
        validators=[refuse_huge_numbers], help_text='A text, a number, or a list for "is one of".'
    )

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["segment", "rule", "id"]

    def __str__(self) -> str:
        return f"{self.attribute} {self.op} {self.value!r}"

    def clean(self) -> None:
        try:
            matching.validate_condition(self.attribute, self.op, self.value)
        except ValueError as error:
            raise ValidationError({"value": str(error)}) from error


class TargetingRule(TrackedModel):
    """On a feature, in order: customers in `segment` are served `value`. The first rule
    whose segment holds the customer wins."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField(default=1)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="targeting_rules")
    value = models.JSONField(validators=[refuse_huge_numbers])

    history = AuditedHistoricalRecords()

    class Meta:
        ordering = ["feature", "position"]
        constraints = [
            models.UniqueConstraint(fields=["feature", "segment"], name="targeting_rule_segment_once"),
        ]

    def __str__(self) -> str:
        return f"{self.feature.key}: {self.segment.key} → {display_value(self.value)}"

    def clean(self) -> None:
        if self.feature_id is None:
            return
        try:
            self.value = clean_value(self.feature, self.value)
        except ValidationError as error:
            raise ValidationError({"value": error.messages}) from error


class SegmentUserPermission(UserObjectPermissionBase):
    """A one-off object permission on one segment for one user (guardian, direct key)."""

    content_object = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="user_permissions")

    objects = UserObjectPermissionManager.from_queryset(TrackedQuerySet)()
    history = AuditedHistoricalRecords()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "segment permission for a user"
        verbose_name_plural = "segment permissions for users"


class SegmentGroupPermission(GroupObjectPermissionBase):
    """An object permission on one segment for one group: from the segment's tags
    (`via_tags`) or granted one-off."""

    content_object = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="group_permissions")
    via_tags = models.BooleanField(default=False, editable=False)

    objects = GroupObjectPermissionManager.from_queryset(TrackedQuerySet)()
    history = AuditedHistoricalRecords()

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "segment permission for a group"
        verbose_name_plural = "segment permissions for groups"
