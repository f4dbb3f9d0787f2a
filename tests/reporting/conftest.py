"""Helpers for the reporting tests: staff clients, reading the dashboard's tables out of the
rendered page, and counting answers by resolving customers one by one (the reference the
precomputed figures must match)."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from catalog.selectors import load_catalog_specs
from reporting.services import usage_snapshot_refresh
from subscriptions.models import Customer, Subscription
from subscriptions.selectors import resolve_customer
from tests import factories as f

HAVE_KINDS = ("plan", "addon", "segment", "override")


@dataclass
class RenderedTable:
    """One table of the page: each row's cells (text, data-value), by the row's data-row."""

    rows: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)

    def texts(self, key: str) -> list[str]:
        return [text for text, _ in self.rows[key]]

    def numbers(self, key: str) -> list[int]:
        return [int(value) for _, value in self.rows[key] if value not in (None, "")]


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, RenderedTable] = {}
        self._table: RenderedTable | None = None
        self._row: list | None = None
        self._cell: list | None = None
        self._value: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (attrs.get("data-testid") or "").startswith("table-"):
            self._table = self.tables.setdefault(attrs["data-testid"].removeprefix("table-"), RenderedTable())
        elif tag == "tr" and self._table is not None and "data-row" in attrs:
            self._row = self._table.rows.setdefault(attrs["data-row"], [])
        elif tag == "td" and self._row is not None:
            self._cell, self._value = [], attrs.get("data-value")

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append((" ".join("".join(self._cell).split()), self._value))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rendered_tables(response) -> dict[str, RenderedTable]:
    """The tables of a rendered page by key (`data-testid="table-<key>"`)."""
    reader = _TableReader()
    reader.feed(response.content.decode())
    return reader.tables


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def resolved_usage(now, customers=None) -> Counter:
    """Customers per (feature, enabled, source kind, source key, plans, country), resolving
    each customer with `resolve_customer`: what the snapshot must hold."""
    catalog = load_catalog_specs()
    plans = live_plans(now)
    counts: Counter = Counter()
    for customer in customers if customers is not None else Customer.objects.order_by("pk"):
        plans_key = f",{','.join(plans[customer.pk])}," if plans[customer.pk] else ""
        for key, answer in resolve_customer(customer, now=now, catalog=catalog).answers.items():
            kind, _, source_key = answer.source.partition(":")
            source_key = "" if kind == "override" else source_key
            counts[key, answer.enabled, kind, source_key, plans_key, str(customer.country or "")] += 1
    return counts


def live_plans(now) -> defaultdict[int, list[str]]:
    """Per customer id, the sorted keys of the plans it holds (docs/domain.md: a subscription counts
    while trialing before its trial ends, active, or past due, even past its grace)."""
    live = Q(status__in=["active", "past_due"]) | Q(status="trialing", trial_ends_at__gt=now)
    plans: defaultdict[int, set[str]] = defaultdict(set)
    for customer_id, plan in Subscription.objects.filter(live).values_list("customer_id", "plan__key"):
        plans[customer_id].add(plan)
    return defaultdict(list, {pk: sorted(keys) for pk, keys in plans.items()})


def page_numbers(counts: Counter) -> list[int]:
    """The feature usage table's numbers for one feature: with it, by kind, without, all."""
    have = [counts[kind] for kind in HAVE_KINDS]
    return [sum(have), *have, counts["off"], sum(have) + counts["off"]]


def per_feature(usage: Counter) -> dict[str, Counter]:
    """{feature: Counter(plan=…, addon=…, segment=…, override=…, off=…)} from `resolved_usage`."""
    result: dict[str, Counter] = {}
    for (feature, enabled, kind, _key, _plans, _country), n in usage.items():
        result.setdefault(feature, Counter())[kind if enabled and kind in HAVE_KINDS else "off"] += n
    return result


def snapshot_usage(snapshot) -> Counter:
    return Counter(
        {
            (r.feature_key, r.enabled, r.source_kind, r.source_key, r.plans, r.country): r.customers
            for r in snapshot.rows.all()
        }
    )


@pytest.fixture
def computed(demo):
    """The demo with its snapshot computed now; the reference counts by resolving each one."""
    now = timezone.now()
    usage_snapshot_refresh(now=now)
    return resolved_usage(now)


@pytest.fixture
def superuser_client(client):
    client.force_login(f.UserFactory(username="root", is_superuser=True))
    return client


@pytest.fixture
def product_client(client, demo):
    """The demo's product user (Product group: views features, customers, overrides; not
    scheduled changes)."""
    client.force_login(User.objects.get(username="product"))
    return client
