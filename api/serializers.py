"""The pieces every app's API serializers share: input serializers that refuse unknown
fields, and the error bodies the schema documents."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """A request body: a JSON object whose every field is known. An unknown field is a 400
    naming it, so a typo never passes as "nothing to change"."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {str(name)[:100]: ["Unknown field."] for name in unknown[:20]}
                )
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "...", "code": "..."}`."""

    detail = serializers.CharField()
    code = serializers.CharField()
