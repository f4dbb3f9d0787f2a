"""The API's own exceptions, beside DRF's: each is an answer with its status and code
(docs/api.md). `toolkit.rest.errors` maps domain exceptions to these and DRF's."""

from __future__ import annotations

from rest_framework import exceptions, status


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request is invalid."
    default_code = "invalid"


class ChangeReasonMissing(BadRequest):
    default_detail = "Say why: every write needs an X-Change-Reason header with a reason."
    default_code = "change_reason_required"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class Unavailable(exceptions.APIException):
    """The cache or the database cannot be reached: the caller applies the feature's
    fallback and asks again after `Retry-After` seconds."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Entitle cannot answer right now; apply the feature's fallback and retry."
    default_code = "service_unavailable"
    wait = 5  # DRF's handler sends it as Retry-After


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"
