"""Bodies of the catalog endpoints (docs/api.md): features, their targeting rules, items and
their entitlements. Input serializers check shape only; references (tags, segments) are
looked up by the views, and the rules about values by the models the services validate."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Feature, Item
from toolkit.rest.fields import (
    INT32_MAX,
    JSONValueField,
    RelatedKeyField,
    RelatedKeysField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictListField,
    StrictSlugField,
)
from toolkit.rest.serializers import InputSerializer

# --- input -------------------------------------------------------------------------------------


class FeatureIn(InputSerializer):
    """PUT replaces the feature: a field left out takes its default. PATCH changes only the
    fields given."""

    name = StrictCharField(max_length=200)
    description = StrictCharField(max_length=10_000, allow_blank=True, default="", trim_whitespace=False)
    kind = StrictChoiceField(choices=Feature.Kind.choices)
    levels = StrictListField(
        child=JSONValueField(),
        max_length=1000,
        default=list,
        help_text="Quantity: whole numbers, e.g. [5, 10, 20]. Custom: texts, lowest first.",
    )
    min_value = StrictIntegerField(allow_null=True, default=None, help_text="Range features only.")
    max_value = StrictIntegerField(allow_null=True, default=None, help_text="Range features only.")
    allow_unlimited = StrictBooleanField(default=False, help_text="Quantity and metered features only.")
    period = StrictChoiceField(
        choices=Feature.Period.choices,
        allow_blank=True,
        default="",
        help_text="Metered features (required for them): how long usage counts before it starts "
        "again from zero. Empty for every other kind.",
    )
    period_anchor = StrictChoiceField(
        choices=Feature.PeriodAnchor.choices,
        allow_blank=True,
        default="",
        help_text="Metered features (required for them): whether periods follow the calendar (UTC) "
        "or each subscription's billing cycle. Empty for every other kind.",
    )
    limit_type = StrictChoiceField(
        choices=Feature.LimitType.choices,
        allow_blank=True,
        default="",
        help_text="Metered features (required for them): hard refuses consumption beyond the "
        "limit, soft allows and reports it. Empty for every other kind.",
    )
    markets = StrictListField(
        child=StrictCharField(max_length=2, min_length=2),
        max_length=300,
        default=list,
        help_text="ISO 3166 country codes where the feature may be offered; empty means everywhere.",
    )
    keep_when_delinquent = StrictBooleanField(default=False)
    fallback = StrictChoiceField(choices=Feature.Fallback.choices, default=Feature.Fallback.DENY)
    tags = StrictListField(child=StrictSlugField(max_length=64), max_length=100, default=list)
    status = StrictChoiceField(choices=Feature.Status.choices, default=Feature.Status.ACTIVE)

    def validate_markets(self, value: list[str]) -> list[str]:
        return [code.upper() for code in value]


class TargetingRuleIn(InputSerializer):
    segment = StrictSlugField(max_length=64)
    value = JSONValueField(help_text="The value served to the segment; it must fit the feature.")


class ItemIn(InputSerializer):
    """PUT replaces the item: a field left out takes its default."""

    kind = StrictChoiceField(choices=Item.Kind.choices)
    name = StrictCharField(max_length=200)
    status = StrictChoiceField(choices=Item.Status.choices, default=Item.Status.ACTIVE)
    rank = StrictIntegerField(default=0, help_text="Plans: a higher rank is a higher tier.")
    grace_days = StrictIntegerField(
        min_value=0,
        max_value=INT32_MAX,
        default=0,
        help_text="Plans: days an unpaid subscription keeps access.",
    )
    external_id = StrictCharField(max_length=128, allow_blank=True, default="")


class SupersedeIn(InputSerializer):
    new_key = StrictSlugField(max_length=64, help_text="The key of the new plan.")
    new_name = StrictCharField(
        max_length=200,
        required=False,
        help_text='Defaults to "<old name> (<new key>)", e.g. "Business (business-2027)".',
    )


class EntitlementIn(InputSerializer):
    value = JSONValueField(
        help_text='true for a switch; a level or "unlimited" for a quantity; a whole number within '
        "bounds for a range; a level for a custom feature; for a metered feature its limit per "
        'period, a whole number from 0 to 2147483647 or "unlimited" where allowed.'
    )


# --- output ------------------------------------------------------------------------------------


class FeatureOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=Feature.Kind.choices)
    levels = serializers.ListField(child=JSONValueField())
    min_value = serializers.IntegerField(allow_null=True)
    max_value = serializers.IntegerField(allow_null=True)
    allow_unlimited = serializers.BooleanField()
    # Metered features only: an empty text for every other kind.
    period = serializers.ChoiceField(choices=Feature.Period.choices, allow_blank=True)
    period_anchor = serializers.ChoiceField(choices=Feature.PeriodAnchor.choices, allow_blank=True)
    limit_type = serializers.ChoiceField(choices=Feature.LimitType.choices, allow_blank=True)
    markets = serializers.ListField(child=serializers.CharField())
    keep_when_delinquent = serializers.BooleanField()
    fallback = serializers.ChoiceField(choices=Feature.Fallback.choices)
    tags = RelatedKeysField()
    status = serializers.ChoiceField(choices=Feature.Status.choices)


class TargetingRuleOut(serializers.Serializer):
    segment = serializers.CharField(source="segment.key")
    value = JSONValueField()


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "Feature key → the value this item gives.",
    }
)
class EntitlementMapField(serializers.Field):
    def to_representation(self, item):
        return {e.feature.key: e.value for e in item.entitlements.all()}


class ItemOut(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=Item.Kind.choices)
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Item.Status.choices)
    rank = serializers.IntegerField()
    grace_days = serializers.IntegerField()
    external_id = serializers.CharField()
    superseded_by = RelatedKeyField()
    entitlements = EntitlementMapField(source="*", read_only=True)


class EntitlementOut(serializers.Serializer):
    item = serializers.CharField(source="item.key")
    feature = serializers.CharField(source="feature.key")
    value = JSONValueField()
