"""Helpers shared by the admin page tests (tests/<app>/test_admin.py)."""

from __future__ import annotations

import html

from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


def page_url(label: str, page: str, obj=None) -> str:
    model = apps.get_model(label)
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}"
    return reverse(name, args=[obj.pk] if page == "change" else [])


def count_queries(client, url: str):
    """(response, number of queries) of a GET, after one GET to warm the process-wide caches."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response, len(queries)


def explain_without_scans_or_sorts(sql: str) -> str:
    """PostgreSQL's plan for `sql` when sequential scans and sorts are priced out: a test's few
    rows would otherwise be read whole whatever the indexes, so this shows whether an index
    can serve the query (its name in the plan) and its order (no Sort node)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        try:
            cursor.execute(f"EXPLAIN {sql}")
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("SET LOCAL enable_seqscan = on")
            cursor.execute("SET LOCAL enable_sort = on")


def text(response) -> str:
    """The page as a person reads it (entities decoded)."""
    return html.unescape(response.content.decode())


def post_form(client, url: str, fields: dict[str, object]):
    """Post `fields` to an admin form as the page would: with every inline's management form."""
    page = client.get(url)
    assert page.status_code == 200
    data: dict[str, object] = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
    return client.post(url, {**data, **fields})
