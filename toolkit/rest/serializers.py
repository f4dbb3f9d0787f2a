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
        value = super().to_internal_value(data)
        if self.parent is not None and getattr(self.root, "partial", False):
            value = self._whole(value)
        return value

    def _whole(self, value: dict) -> dict:
        """An object inside a PATCH body (a rule, a condition, an add-on) is given whole:
        its required fields are required and its defaults apply, as in a PUT. (DRF lets the
        root's `partial` reach nested objects, which then arrive with fields missing.)"""
        missing = {}
        for name, field in self.fields.items():
            if field.read_only or field.source in value:
                continue
            if field.required:
                missing[name] = [field.error_messages["required"]]
            elif field.default is not serializers.empty:
                value[field.source] = field.default() if callable(field.default) else field.default
        if missing:
            raise serializers.ValidationError(missing)
        return value


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "...", "code": "..."}`."""

    detail = serializers.CharField()
    code = serializers.CharField()
