"""The dashboard in a real browser: the product user opens the admin's front page and sees the
charts drawn, with the numbers the demo customers resolve to, and the customers near a usage
limit; a feature's Reporting tab loads its own figures and chart when opened."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from api.models import CheckCount
from catalog.selectors import load_catalog_specs
from reporting.services import usage_snapshot_refresh
from subscriptions.models import Customer
from subscriptions.selectors import resolve_customer
from tests.browser.conftest import screenshot
from tests.usage.test_selectors import record_usage

pytestmark = pytest.mark.browser

KINDS = ("plan", "addon", "segment", "override")

# What each canvas.chart on the page holds and how much of it is painted.
CHARTS_JS = """
(root) => [...root.querySelectorAll('canvas.chart')].map((canvas) => {
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
  return {
    type: chart ? chart.config.type : null,
    labels: chart ? chart.data.labels : [],
    datasets: chart ? chart.data.datasets.map((d) => ({label: d.label, data: d.data})) : [],
    painted: painted,
  };
})
"""


def resolved_counts(now) -> dict[str, Counter]:
    """Per feature: customers who have it by source kind ("off" for those who do not),
    resolving each demo customer one by one."""
    catalog = load_catalog_specs()
    counts: dict[str, Counter] = {}
    for customer in Customer.objects.all():
        for key, answer in resolve_customer(customer, now=now, catalog=catalog).answers.items():
            kind = answer.source.partition(":")[0]
            counts.setdefault(key, Counter())[kind if answer.enabled else "off"] += 1
    return counts


@pytest.fixture
def computed(demo_live):
    """The demo with its usage snapshot computed and a few days of checks counted; northwind
    has used 900 of its 1,000 api-calls, umbrella 2.4M of its 2M ai-tokens (a soft limit)."""
    record_usage("northwind", "api-calls", 900)
    record_usage("umbrella", "ai-tokens", 2_400_000)
    now = timezone.now()
    usage_snapshot_refresh(now=now)
    today = now.date()
    CheckCount.objects.bulk_create(
        CheckCount(feature_key=key, day=today - timedelta(days=n), count=count * (n + 1))
        for key, count in (("max-members", 40), ("4k-streaming", 25), ("data-export", 5))
        for n in range(5)
    )
    return resolved_counts(now)


def test_dashboard__product_user__charts_drawn_with_the_demo_customers_numbers(
    page, demo_live, login, computed
):
    # Given the demo, its figures computed, and the product user logged in
    login(page, demo_live, "product")

    # When the admin's front page opens (the login lands there)
    dashboard = page.get_by_test_id("reporting-dashboard")
    expect(dashboard).to_be_visible()
    expect(page.get_by_test_id("freshness")).to_contain_text("Computed just now for 15 customers")

    # Then the table's max-members row has the demo's resolution: 5 customers through plans
    max_members = computed["max-members"]
    assert max_members["plan"] == 5  # acme, globex, initech, umbrella, vandelay (hooli is delinquent)
    cells = page.get_by_test_id("table-feature-usage").locator('tr[data-row="max-members"] td')
    expect(cells.nth(0)).to_have_text("max-members")
    expect(cells.nth(2)).to_have_text(str(sum(max_members[k] for k in KINDS)))
    for index, kind in enumerate(KINDS):
        expect(cells.nth(3 + index)).to_have_text(str(max_members[kind]))
    expect(cells.nth(7)).to_have_text(str(max_members["off"]))

    # And both charts are drawn, each bar and line holding the same numbers
    expect(page.locator("canvas.chart")).to_have_count(2)
    usage_chart, checks_chart = page.evaluate(CHARTS_JS, page.locator("body").element_handle())
    assert usage_chart["type"] == "bar"
    assert usage_chart["painted"] > 1000
    assert usage_chart["labels"] == sorted(computed)
    for dataset, kind in zip(usage_chart["datasets"], KINDS, strict=True):
        assert dataset["data"] == [computed[key][kind] for key in usage_chart["labels"]], kind
    assert checks_chart["type"] == "line"
    assert checks_chart["painted"] > 500
    lines = {dataset["label"]: dataset["data"] for dataset in checks_chart["datasets"]}
    assert set(lines) == {"max-members", "4k-streaming", "data-export"}
    assert lines["max-members"][-5:] == [200, 160, 120, 80, 40]  # oldest first, today last
    assert sum(lines["data-export"]) == 5 * (1 + 2 + 3 + 4 + 5)

    # And the customers near a usage limit are listed, the fullest first, each marked
    limits = page.get_by_test_id("table-limits")
    expect(limits.locator("tbody tr")).to_have_count(2)
    umbrella = limits.locator('tr[data-row="umbrella:ai-tokens"] td')
    expect(umbrella.nth(4)).to_have_text("120 %")
    expect(umbrella.nth(5)).to_have_text("over the limit")
    northwind = limits.locator('tr[data-row="northwind:api-calls"] td')
    expect(northwind.nth(2)).to_have_text("900")
    expect(northwind.nth(3)).to_have_text("1,000")
    expect(northwind.nth(4)).to_have_text("90 %")
    expect(northwind.nth(5)).to_have_text("near the limit")
    expect(limits.locator("tbody tr").first).to_have_attribute("data-row", "umbrella:ai-tokens")
    limits.scroll_into_view_if_needed()
    screenshot(page, "dashboard-limits")
    northwind.nth(0).get_by_role("link", name="northwind").click()
    expect(page.get_by_role("heading", name="Northwind (northwind)")).to_be_visible()


def test_feature_reporting_tab__opened__loads_the_features_figures_and_draws_its_chart(
    page, demo_live, login, computed
):
    # Given the product user on the max-members feature page
    login(page, demo_live, "product")
    page.get_by_test_id("table-feature-usage").get_by_role("link", name="max-members", exact=True).click()
    expect(page.get_by_role("link", name="Reporting", exact=True)).to_be_visible()

    # When the Reporting tab opens (the dashboard's link opened it already)
    tab = page.get_by_test_id("feature-reporting")

    # Then the feature's own figures are loaded, and its chart drawn
    expect(tab).to_be_visible()
    have = sum(computed["max-members"][k] for k in KINDS)
    expect(tab.get_by_test_id("feature-have")).to_have_text(str(have))
    business = tab.get_by_test_id("table-usage-by-source").locator('tr[data-row="on:plan:business"] td')
    expect(business.nth(3)).to_have_text("2")  # acme and umbrella (hooli is past its grace)
    expect(tab.locator("canvas.chart")).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas.chart')].every(c => Chart.getChart(c))"
    )
    sources, checks = page.evaluate(CHARTS_JS, tab.element_handle())
    assert sources["painted"] > 500 and checks["painted"] > 500
    assert dict(zip(sources["labels"], sources["datasets"][0]["data"], strict=True))["plan:business"] == 2

    # And a filter reloads the tab alone with the narrower figures
    tab.get_by_label("Market").select_option("US")
    expect(business.nth(3)).to_have_text("1")  # acme
    expect(page).to_have_url(
        f"{demo_live.url}/admin/catalog/feature/{_pk('max-members')}/change/#dataset-reporting"
    )


def _pk(key: str) -> int:
    from catalog.models import Feature

    return Feature.objects.get(key=key).pk
