"""The OpenAPI schema says what the API really does: the X-Change-Reason header on every
write, and every error answer an operation can give. (The key header's security scheme is
registered by `api.authentication`.)"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from toolkit.rest.serializers import ErrorSerializer

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

CHANGE_REASON = OpenApiParameter(
    name="X-Change-Reason",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description="Why this change is made; recorded in history with the key's owner. Without "
    "it the answer is 400 with code `change_reason_required` and nothing changes.",
)

FIELD_ERRORS = {
    "anyOf": [{"type": "object", "additionalProperties": True}, {"type": "array", "items": {}}],
    "description": 'Either {"detail": "...", "code": "..."} or field errors: '
    '{"<field>": ["message", ...], ...} (an array of such objects for an array body).',
}


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


class EntitleAutoSchema(AutoSchema):
    """drf-spectacular's schema plus the headers and errors every operation shares."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method not in SAFE_METHODS:
            parameters.append(CHANGE_REASON)
        return parameters

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        errors = {
            "401": _error("No key, or an invalid, revoked or expired key."),
            "404": _error("No such object (or an invalid cursor)."),
            "429": _error("Too many requests for this key; see Retry-After."),
            "503": _error("Entitle's cache cannot be reached: apply the feature's fallback and retry."),
        }
        if self.method == "GET" and self._is_list_view():
            errors["400"] = OpenApiResponse(response=FIELD_ERRORS, description="An invalid query parameter.")
        if self.method not in SAFE_METHODS:
            errors.update(
                {
                    "400": OpenApiResponse(
                        response=FIELD_ERRORS,
                        description="Invalid body, or the X-Change-Reason header is missing "
                        "(code `change_reason_required`). Nothing was changed.",
                    ),
                    "403": _error("The key's scope is read, or its owner may not make this change."),
                    "409": _error("The change conflicts with the current state."),
                    "413": _error("The body is larger than 1 MiB."),
                    "415": _error("The body is not JSON."),
                }
            )
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return dict(sorted(responses.items()))


SLUG = r"^[-a-zA-Z0-9_]+$"


def path_parameter(name: str, description: str, example: object, *, slug: bool = True) -> OpenApiParameter:
    """A path parameter with an example from the demo catalogue (docs and schemathesis use it)."""
    return OpenApiParameter(
        name,
        OpenApiTypes.INT if isinstance(example, int) else OpenApiTypes.STR,
        OpenApiParameter.PATH,
        description=description,
        pattern=SLUG if slug and isinstance(example, str) else None,
        examples=[OpenApiExample(str(example), value=example)],
    )


def body_example(name: str, value: object) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)
