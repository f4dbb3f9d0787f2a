"""JSON bodies, parsed by orjson, with the size limit checked before anything is read, and
numbers outside the signed 64-bit range refused wherever they are in the body."""

from __future__ import annotations

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, get_encoding

from toolkit.bounds import INT64_MAX, INT64_MIN, out_of_range_number
from toolkit.rest.exceptions import RequestTooLarge


class OrjsonParser(BaseParser):
    """`application/json`; a body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413, a
    number outside the signed 64-bit range with 400 (`parse_error`, naming where it is)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        if request is not None and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        data = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(data) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = get_encoding(parser_context).lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8"):
            try:
                data = data.decode(encoding)
            except UnicodeDecodeError as error:
                raise ParseError(f"The body is not valid {encoding}.") from error
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise ParseError(f"The body is not valid JSON: {error}.") from error
        where = out_of_range_number(parsed)
        if where is not None:
            raise ParseError(
                f"Numbers must lie within the signed 64-bit range ({INT64_MIN} to {INT64_MAX}): "
                f"see {where[:200]}."
            )
        return parsed
