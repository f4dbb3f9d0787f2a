"""Scheduled changes over the API: a write to make later (docs/api.md)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from audit.models import ScheduledChange
from audit.scheduling import WRITE_METHODS, check_request_shape
from toolkit.rest.fields import StrictDateTimeField


class StoredRequest(serializers.Serializer):
    method = serializers.ChoiceField(choices=WRITE_METHODS)
    path = serializers.CharField(max_length=500)
    body = serializers.JSONField(required=False, allow_null=True, default=None)


class ScheduledChangeIn(serializers.Serializer):
    effective_at = StrictDateTimeField(help_text="When to apply it; before 9000-01-01 UTC.")
    request = StoredRequest()

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        request = attrs["request"]
        try:
            check_request_shape(request["method"], request["path"], request.get("body"))
        except DjangoValidationError as error:
            raise serializers.ValidationError({"request": error.message_dict}) from error
        return attrs


class ScheduledChangeOut(serializers.ModelSerializer):
    request = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = ScheduledChange
        fields = [
            "id",
            "status",
            "effective_at",
            "request",
            "reason",
            "created_by",
            "error",
            "applied_at",
            "created_at",
        ]

    def get_request(self, change: ScheduledChange) -> dict:
        return {"method": change.method, "path": change.path, "body": change.body}
