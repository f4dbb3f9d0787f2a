"""JSON answers rendered by orjson (NOTES.md: measurably faster than DRF's json module)."""

from __future__ import annotations

from decimal import Decimal

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import BaseRenderer


def _default(value):
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(data) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return dumps(data)
