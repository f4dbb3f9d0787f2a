"""The benchmark's ceiling (api/bench.py): routed only when asked for, and asked in the checks'
shape, a customer's id in the path, it answers the same JSON as at its one fixed URL."""

from __future__ import annotations

import importlib
import json

import pytest
from django.urls import Resolver404, clear_url_caches, resolve


@pytest.fixture
def bench_urls(monkeypatch):
    """config.urls as a benchmark server imports it (`ENTITLE_BENCH_VIEWS=1`); put back after."""
    monkeypatch.setenv("ENTITLE_BENCH_VIEWS", "1")
    urls = importlib.reload(importlib.import_module("config.urls"))
    clear_url_caches()
    yield urls
    monkeypatch.delenv("ENTITLE_BENCH_VIEWS")
    importlib.reload(urls)
    clear_url_caches()


def test_bare_view__per_customer_path__the_same_json_as_the_fixed_url(bench_urls, rf):
    per_customer = resolve("/bench/bare/cust-000042", urlconf=bench_urls)
    fixed = resolve("/bench/bare", urlconf=bench_urls)

    answer = per_customer.func(rf.get("/bench/bare/cust-000042"), **per_customer.kwargs)
    same = fixed.func(rf.get("/bench/bare"), **fixed.kwargs)

    assert per_customer.kwargs == {"external_id": "cust-000042"}
    assert answer.status_code == 200
    assert json.loads(answer.content) == json.loads(same.content)
    assert json.loads(answer.content)["feature"] == "max-members"


def test_bare_view__not_routed_unless_asked_for():
    urls = importlib.import_module("config.urls")

    with pytest.raises(Resolver404):
        resolve("/bench/bare/cust-000042", urlconf=urls)
