"""Errors in the API's shape (docs/api.md): `{"detail": "...", "code": "..."}`, or DRF's field errors
for an invalid body. Domain exceptions raised by services become 4xx answers here, so a
refused write is never a 500."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from psycopg import errors as pg_errors
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from toolkit.change_context import ChangeReasonRequired
from toolkit.rest.exceptions import BadRequest, ChangeReasonMissing, Conflict, RequestTooLarge, Unavailable


def from_django_validation(error: DjangoValidationError) -> exceptions.APIException:
    """Field messages become DRF field errors (`__all__` as `non_field_errors`); messages
    about no field in particular become `{"detail", "code": "invalid"}`."""
    if hasattr(error, "error_dict"):
        errors = {
            ("non_field_errors" if name == "__all__" else name): messages
            for name, messages in error.message_dict.items()
        }
        if set(errors) != {"non_field_errors"}:
            return exceptions.ValidationError(errors)
        return BadRequest(" ".join(errors["non_field_errors"]))
    return BadRequest(" ".join(error.messages))


_DATABASE_DOWN = (OperationalError, InterfaceError, pg_errors.OperationalError, pg_errors.InterfaceError)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, ChangeReasonRequired):
        return ChangeReasonMissing(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        return from_django_validation(exc)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        # A service looking a path's object up by key: "No customer acme."
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, IntegrityError):
        # A concurrent write got there first (a unique key, a protected row).
        return Conflict("The change conflicts with another one made at the same time; read and retry.")
    if isinstance(exc, DataError):
        return BadRequest("A value is out of the range the database can store.")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # Checks, keys and throttling need the cache: say so, so applications use their fallback.
        return Unavailable()
    if isinstance(exc, _DATABASE_DOWN):
        if isinstance(exc.__cause__ or exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure):
            # A deadlock or serialization failure with a concurrent write: the write may be retried.
            return Conflict("The change conflicts with another one made at the same time; retry.")
        # The database cannot be reached (down, restarting, out of connections).
        return Unavailable()
    return exc


def exception_handler(exc: Exception, context: dict):
    """DRF's handler, after mapping domain exceptions, with plain details as {detail, code}."""
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException) and not isinstance(exc.detail, dict | list):
        response.data = {"detail": str(exc.detail), "code": getattr(exc.detail, "code", exc.default_code)}
    if type(exc) is exceptions.Throttled:  # a key's rate (the wrong-keys one says so itself)
        response.data["detail"] = "Too many requests for this key; retry after the Retry-After seconds."
    return response
