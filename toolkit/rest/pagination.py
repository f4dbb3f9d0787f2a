"""Lists are read page by page with an opaque cursor, ordered by each object's key: no
COUNT(*) on large tables, and a page stays stable while rows are added."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class KeyCursorPagination(CursorPagination):
    """`?limit=` (1–1000, default 100) and `?cursor=` from `next` / `previous`."""

    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
    cursor_query_description = "The cursor of a page, as given in `next` or `previous`."
    page_size_query_description = "Objects per page (1–1000, default 100)."

    def get_ordering(self, request, queryset, view):
        return (view.cursor_ordering,)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["next", "previous", "results"]
        return response
