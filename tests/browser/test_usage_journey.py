"""Usage in a real browser: Support sees a customer near its api-calls limit on the dashboard,
finds the customer, reads its usage this period, tops the limit up with a reason, sees the
new limit, and finds the top-up in the audit log; Sales sees the usage but cannot top up."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import no_sideways_scroll, open_sidebar, save, screenshot

pytestmark = pytest.mark.browser

REASON = "Launch week goodwill, https://tickets.example/SUP-314"

# What the usage section's chart holds once drawn, and how much of it is painted.
CHART_JS = """
(canvas) => {
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
  return {labels: chart.data.labels, data: chart.data.datasets[0].data, painted: painted};
}
"""


@pytest.fixture
def northwind_near_its_limit(demo_live):
    """northwind (basic: api-calls 1,000 a billing month, hard) has used 300 on its period's
    first day and 600 today: 90 %. The dashboard's figures are computed."""
    from django.utils import timezone

    from reporting.services import usage_snapshot_refresh
    from subscriptions.models import Customer
    from tests.usage.test_selectors import meter_of, record_usage

    first_day = meter_of(Customer.objects.get(external_id="northwind"), "api-calls").period_start
    record_usage("northwind", "api-calls", 300, at=first_day + timedelta(minutes=30))
    record_usage("northwind", "api-calls", 600)
    usage_snapshot_refresh(now=timezone.now())
    return first_day


def _open_customer(page, external_id: str) -> None:
    """Sidebar → Customers → search → the customer."""
    open_sidebar(page, "Customers")
    search = page.locator("input[name=q]")
    search.fill(external_id)
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]q={external_id}"))
    page.get_by_role("link", name=external_id, exact=True).click()


def test_usage_journey__support_tops_up_api_calls__new_limit_shown_and_recorded_with_the_reason(
    page, demo_live, login, northwind_near_its_limit
):
    from catalog.models import Feature

    first_day = northwind_near_its_limit
    login(page, demo_live, "support")

    # The dashboard (where the login lands) lists northwind at 90 % of its api-calls
    row = page.get_by_test_id("table-limits").locator('tr[data-row="northwind:api-calls"] td')
    expect(row.nth(2)).to_have_text("900")
    expect(row.nth(4)).to_have_text("90 %")
    expect(row.nth(5)).to_have_text("near the limit")
    page.get_by_test_id("limits").scroll_into_view_if_needed()
    screenshot(page, "usage-dashboard-support")

    # Support finds northwind and reads its usage this period
    _open_customer(page, "northwind")
    expect(page.get_by_role("heading", name="Northwind (northwind)")).to_be_visible()
    section = page.locator("fieldset").filter(has=page.get_by_role("heading", name="Usage this period"))
    api_calls = section.locator('tbody[data-feature="api-calls"]')
    expect(api_calls.get_by_test_id("used")).to_have_text("900")
    expect(api_calls.get_by_test_id("limit")).to_have_text("1,000")
    expect(api_calls.get_by_test_id("remaining")).to_have_text("100")
    expect(api_calls.get_by_test_id("percent")).to_have_text("90 %")
    expect(api_calls.get_by_test_id("level")).to_have_text("near the limit")
    expect(api_calls.get_by_test_id("limit-type")).to_have_text("hard limit")

    # ... the period's days drawn as bars, its first day's 300 and today's 600 among them
    canvas = api_calls.locator("canvas.chart")
    expect(canvas).to_have_count(1)
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas.chart')].every(c => Chart.getChart(c))"
    )
    chart = canvas.evaluate(CHART_JS)
    assert chart["labels"][0] == f"{first_day:%Y-%m-%d}"
    assert chart["data"][0] == 300 and chart["data"][-1] == 0  # the period's last day is to come
    assert sum(chart["data"]) == 900 and 600 in chart["data"]
    assert chart["painted"] > 50
    api_calls.scroll_into_view_if_needed()
    screenshot(page, "usage-customer-before")
    no_sideways_scroll(page)

    # ... and every consumption behind the figures is one click away
    section.get_by_test_id("consumptions").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("northwind")
    screenshot(page, "usage-consumptions")
    page.go_back()
    api_calls = page.get_by_test_id("metered-usage").locator('tbody[data-feature="api-calls"]')

    # Support tops it up: the form opens with the customer and api-calls chosen
    api_calls.get_by_role("link", name="Top up").click()
    expect(page).to_have_url(re.compile(r"/subscriptions/topup/add/\?customer=\d+&feature=\d+$"))
    expect(page.locator("#id_feature")).to_have_value(str(Feature.objects.get(key="api-calls").pk))
    expect(page.locator("#id_customer + .select2")).to_contain_text("Northwind (northwind)")
    # only the metered features Support may grant are offered
    offered = page.locator("#id_feature option:not([value=''])").all_text_contents()
    assert [text.strip() for text in offered] == ["ai-tokens", "api-calls"]
    page.get_by_label("Units to add").fill("500")
    page.get_by_label("Reason for this change").fill(REASON)
    screenshot(page, "usage-top-up-form")
    save(page, REASON)

    # Back on the customer's page, the limit is 1,500 for this period
    expect(page.get_by_text("Added 500 to northwind's api-calls limit")).to_be_visible()
    api_calls = page.get_by_test_id("metered-usage").locator('tbody[data-feature="api-calls"]')
    expect(api_calls.get_by_test_id("limit")).to_have_text("1,500")
    expect(api_calls.get_by_test_id("topped-up")).to_have_text("incl. top-ups +500")
    expect(api_calls.get_by_test_id("remaining")).to_have_text("600")
    expect(api_calls.get_by_test_id("percent")).to_have_text("60 %")
    expect(api_calls.get_by_test_id("level")).to_have_count(0)
    resolved = page.get_by_test_id("inherited-entitlements").locator('tr[data-feature="api-calls"]')
    expect(resolved.locator("td").nth(1)).to_have_text("1500")
    expect(resolved.get_by_test_id("contributions")).to_contain_text("topup 500")
    screenshot(page, "usage-customer-after")

    # And the audit log shows the top-up, by support, with the reason
    open_sidebar(page, "Audit log")
    search = page.locator("input[name=q]")
    search.fill("SUP-314")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=SUP-314"))
    entry = page.locator("tr", has_text="+500 api-calls for northwind")
    expect(entry).to_have_count(1)
    expect(entry.get_by_test_id("reason")).to_have_text(REASON)
    expect(entry.get_by_role("link", name="https://tickets.example/SUP-314")).to_be_visible()
    expect(entry).to_contain_text("support")
    screenshot(page, "usage-audit-log")

    # The entry leads to the top-up: read-only, with who added it and why
    entry.get_by_role("link", name="+500 api-calls for northwind").click()
    expect(page.get_by_role("heading", name="+500 api-calls for northwind")).to_be_visible()
    screenshot(page, "usage-top-up-read-only")
    expect(page.get_by_text(REASON)).to_be_visible()
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)

    # ... listed among the top-ups, with who and why
    page.get_by_role("link", name="Top-ups", exact=True).click()
    listed = page.locator("#result_list tbody tr")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("+500")
    expect(listed).to_contain_text("support")
    expect(listed.get_by_role("link", name="https://tickets.example/SUP-314")).to_be_visible()
    screenshot(page, "usage-top-ups")


def test_usage_journey__sales__sees_the_usage_but_no_top_up(page, demo_live, login, northwind_near_its_limit):
    login(page, demo_live, "sales")

    _open_customer(page, "northwind")

    api_calls = page.get_by_test_id("metered-usage").locator('tbody[data-feature="api-calls"]')
    expect(api_calls.get_by_test_id("used")).to_have_text("900")
    expect(api_calls.get_by_test_id("percent")).to_have_text("90 %")
    expect(page.get_by_role("link", name="Top up")).to_have_count(0)
    api_calls.scroll_into_view_if_needed()
    screenshot(page, "usage-customer-sales")

    # A top-up form opened by its address is refused
    response = page.goto(f"{demo_live.url}/admin/subscriptions/topup/add/")
    assert response.status == 403
