"""Bodies of the usage endpoints (docs/usage.md)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from catalog.models import Feature
from catalog.values import LARGEST_WHOLE_NUMBER
from toolkit.rest.fields import StrictCharField, StrictDateTimeField, StrictIntegerField, StrictSlugField
from toolkit.rest.serializers import InputSerializer

IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,128}$"


class IdempotencyKeyField(StrictCharField):
    """1 to 128 printable ASCII characters, no spaces: a request id, a UUID."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text", "The same key within 24 hours returns the first answer and counts nothing more."
        )
        super().__init__(**kwargs)
        message = "An idempotency key is 1 to 128 printable ASCII characters without spaces."
        self.validators.append(RegexValidator(IDEMPOTENCY_KEY, message=message))


def _quantity() -> StrictIntegerField:
    return StrictIntegerField(
        min_value=1,
        max_value=LARGEST_WHOLE_NUMBER,
        default=1,
        help_text=f"Units, from 1 to {LARGEST_WHOLE_NUMBER:,}.",
    )


class ConsumeIn(InputSerializer):
    quantity = _quantity()
    idempotency_key = IdempotencyKeyField()


class UsageIn(InputSerializer):
    feature = StrictSlugField(max_length=64)
    quantity = _quantity()
    idempotency_key = IdempotencyKeyField()
    timestamp = StrictDateTimeField(
        required=False, help_text="When the usage happened, within the current period; empty: now."
    )


class MeteredOut(serializers.Serializer):
    """Where a metered feature stands for one customer after a consume or a report."""

    customer = serializers.CharField()
    feature = serializers.CharField()
    used = serializers.IntegerField(
        allow_null=True,
        help_text="Counted in the current period; null when the customer does not have the feature.",
    )
    limit = serializers.IntegerField(allow_null=True, help_text="The period's limit; null when unlimited.")
    remaining = serializers.IntegerField(allow_null=True, help_text="What is left; null when unlimited.")
    resets_at = serializers.DateTimeField(help_text="When the period ends and counting starts from zero.")
    limit_type = serializers.ChoiceField(choices=Feature.LimitType.choices)


class UsageOut(MeteredOut):
    recorded = serializers.BooleanField(
        help_text="False (nothing counted) when the customer does not have the feature."
    )


class ConsumeOut(MeteredOut):
    allowed = serializers.BooleanField(
        help_text="Whether the quantity was consumed; false (nothing consumed) when the customer does not "
        "have the feature or a hard limit would be passed."
    )
