"""Bodies of the segment endpoints (docs/api.md): a segment's name, tags, explicit lists of
customers (by external id) and rules (each a list of conditions that must all hold)."""

from __future__ import annotations

from rest_framework import serializers

from segments import matching
from segments.models import Condition
from toolkit.rest.fields import (
    JSONValueField,
    RelatedKeysField,
    StrictCharField,
    StrictChoiceField,
    StrictListField,
    StrictSlugField,
)
from toolkit.rest.serializers import InputSerializer


class ConditionIn(InputSerializer):
    attribute = StrictCharField(
        max_length=100, help_text="country, plan, plan_rank, status, or traits.<name>."
    )
    op = StrictChoiceField(choices=Condition.Op.choices)
    value = JSONValueField(help_text='A text, a number, or a non-empty list for "in" and "not_in".')

    def validate(self, attrs):
        try:
            matching.validate_condition(attrs["attribute"], attrs["op"], attrs["value"])
        except ValueError as error:
            raise serializers.ValidationError({"value": [str(error)]}) from error
        return attrs


class RuleIn(InputSerializer):
    conditions = ConditionIn(many=True, allow_empty=False, max_length=100)


class SegmentIn(InputSerializer):
    """PUT replaces the segment: a field left out takes its default (no tags, empty lists,
    no rules). PATCH changes only the fields given."""

    name = StrictCharField(max_length=200)
    description = StrictCharField(max_length=10_000, allow_blank=True, default="", trim_whitespace=False)
    tags = StrictListField(child=StrictSlugField(max_length=64), max_length=100, default=list)
    included = StrictListField(
        child=StrictCharField(max_length=128),
        max_length=10_000,
        default=list,
        help_text="External ids of customers always in the segment.",
    )
    excluded = StrictListField(
        child=StrictCharField(max_length=128),
        max_length=10_000,
        default=list,
        help_text="External ids of customers never in it (unless also included).",
    )
    rules = RuleIn(many=True, default=list, max_length=100, help_text="Any one rule suffices.")


class ConditionOut(serializers.Serializer):
    attribute = serializers.CharField()
    op = serializers.ChoiceField(choices=Condition.Op.choices)
    value = JSONValueField()


class RuleOut(serializers.Serializer):
    conditions = ConditionOut(many=True)


class SegmentOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    tags = RelatedKeysField()
    included = serializers.ListField(child=serializers.CharField())
    excluded = serializers.ListField(child=serializers.CharField())
    rules = RuleOut(many=True)

    def to_representation(self, segment):
        members = list(segment.members.all())
        rules: dict[int, list[Condition]] = {}
        for condition in sorted(segment.conditions.all(), key=lambda c: (c.rule, c.pk)):
            rules.setdefault(condition.rule, []).append(condition)
        return {
            "key": segment.key,
            "name": segment.name,
            "description": segment.description,
            "tags": sorted(tag.key for tag in segment.tags.all()),
            "included": sorted(m.customer.external_id for m in members if m.kind == "included"),
            "excluded": sorted(m.customer.external_id for m in members if m.kind == "excluded"),
            "rules": [
                {"conditions": [{"attribute": c.attribute, "op": c.op, "value": c.value} for c in conditions]}
                for _, conditions in sorted(rules.items())
            ],
        }
