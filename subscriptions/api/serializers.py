"""Bodies of the customer, subscription, override and check endpoints (docs/api.md)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Feature
from subscriptions.models import Override, Subscription
from toolkit.rest.fields import (
    INT32_MAX,
    JSONObjectField,
    JSONValueField,
    StrictCharField,
    StrictChoiceField,
    StrictDateTimeField,
    StrictIntegerField,
    StrictSlugField,
)
from toolkit.rest.serializers import InputSerializer

# --- input -------------------------------------------------------------------------------------


class CustomerIn(InputSerializer):
    """PUT replaces the customer: a field left out takes its default."""

    name = StrictCharField(max_length=200)
    country = StrictCharField(
        max_length=2, allow_blank=True, default="", help_text="ISO 3166 code, e.g. DE; empty if unknown."
    )
    traits = JSONObjectField(
        default=dict, help_text='Free attributes for segment rules, e.g. {"industry": "media"}.'
    )

    def validate_country(self, value: str) -> str:
        return value.upper()


class AddonIn(InputSerializer):
    addon = StrictSlugField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=INT32_MAX, default=1)


class SubscriptionIn(InputSerializer):
    """PUT replaces the subscription: a field left out takes its default (no add-ons, no
    dates, status active). A subscription stays with its customer."""

    customer = StrictCharField(max_length=128, help_text="The customer's external id.")
    plan = StrictSlugField(max_length=64, help_text="The plan's key; a legacy or archived plan is refused.")
    status = StrictChoiceField(choices=Subscription.Status.choices, default=Subscription.Status.ACTIVE)
    trial_ends_at = StrictDateTimeField(allow_null=True, default=None)
    current_period_end = StrictDateTimeField(allow_null=True, default=None)
    past_due_since = StrictDateTimeField(allow_null=True, default=None)
    addons = AddonIn(many=True, default=list, max_length=100)


class OverrideIn(InputSerializer):
    feature = StrictSlugField(max_length=64)
    effect = StrictChoiceField(choices=Override.Effect.choices, default=Override.Effect.GRANT)
    value = JSONValueField(
        required=False, allow_null=True, default=None, help_text="The granted value; none for a revoke."
    )
    valid_from = StrictDateTimeField(allow_null=True, default=None, help_text="Empty: from now on.")
    valid_until = StrictDateTimeField(allow_null=True, default=None, help_text="Empty: until removed.")

    def validate(self, attrs):
        if attrs.get("effect") == Override.Effect.REVOKE and attrs.get("value") is not None:
            raise serializers.ValidationError({"value": ["A revoke takes no value."]})
        return attrs


# --- output ------------------------------------------------------------------------------------


class CustomerOut(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    country = serializers.CharField()
    traits = JSONObjectField()
    created_at = serializers.DateTimeField()


class AddonOut(serializers.Serializer):
    addon = serializers.CharField(source="addon.key")
    quantity = serializers.IntegerField()


class SubscriptionOut(serializers.Serializer):
    external_id = serializers.CharField()
    customer = serializers.CharField(source="customer.external_id")
    plan = serializers.CharField(source="plan.key")
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    trial_ends_at = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    past_due_since = serializers.DateTimeField(allow_null=True)
    addons = AddonOut(many=True, source="addons.all")
    created_at = serializers.DateTimeField()


class OverrideOut(serializers.Serializer):
    id = serializers.IntegerField()
    subscription = serializers.CharField(source="subscription.external_id")
    customer = serializers.CharField(source="subscription.customer.external_id")
    feature = serializers.CharField(source="feature.key")
    effect = serializers.ChoiceField(choices=Override.Effect.choices)
    value = JSONValueField(allow_null=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


# --- checks (documentation only: the check views write their bytes themselves) ----------------


@extend_schema_field(
    {
        "nullable": True,
        "anyOf": [{"type": "boolean"}, {"type": "integer"}, {"type": "string"}],
        "description": "switch: a boolean; quantity and range: a whole number (0 when off), or "
        "null when unlimited; custom: the level's text, or null when off.",
    }
)
class AnswerValueField(serializers.Field):
    pass


class AnswerOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Feature.Kind.choices)
    enabled = serializers.BooleanField()
    value = AnswerValueField()
    unlimited = serializers.BooleanField()
    source = serializers.CharField(
        help_text="What decided: plan:<key>, addon:<key>, segment:<key>, override:<id>, market, archived "
        "or default."
    )
    valid_until = serializers.DateTimeField(allow_null=True, help_text="Until when this answer holds.")
    fallback = serializers.ChoiceField(
        choices=Feature.Fallback.choices, help_text="What to do when Entitle cannot be reached."
    )
    # Metered features only (docs/usage.md).
    used = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Metered: counted in the current period; null when the customer does not have the feature.",
    )
    limit = serializers.IntegerField(
        required=False, allow_null=True, help_text="Metered: the period's limit; null when unlimited."
    )
    remaining = serializers.IntegerField(
        required=False, allow_null=True, help_text="Metered: what is left of the limit; null when unlimited."
    )
    resets_at = serializers.DateTimeField(required=False, help_text="Metered: when the period ends.")
    limit_type = serializers.ChoiceField(
        choices=Feature.LimitType.choices,
        required=False,
        help_text="Metered: hard (refused beyond the limit) or soft (counted and reported).",
    )


class EntitlementsOut(serializers.Serializer):
    customer = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(
        allow_null=True, help_text="The earliest time at which any answer changes by itself."
    )
    entitlements = serializers.DictField(child=AnswerOut(), help_text="Every active feature, by key.")


class FeatureAnswerOut(AnswerOut):
    feature = serializers.CharField()
    customer = serializers.CharField()
