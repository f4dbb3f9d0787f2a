"""The admin's shell in a real browser, as the superuser `admin` finds it: the dashboard's charts
drawn, every page the sidebar and the front page link to opening cleanly and fitting a 1400 px
window, every add form opening, the favicon served, no dead "View site" link, the audit log
filtered by user and exported, and a customer's History leading to everything about it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from api.models import CheckCount
from reporting.services import usage_snapshot_refresh
from subscriptions.models import Customer
from subscriptions.services import customer_save

pytestmark = pytest.mark.browser

# How much of each canvas.chart on the page is painted.
PAINTED_JS = """
() => [...document.querySelectorAll('canvas.chart')].map((canvas) => {
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
  return painted;
})
"""

# Whatever scrolls sideways: the page itself, or any box on it (a table's scroll wrapper).
SIDEWAYS_JS = """
() => {
  const wide = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) wide.push('page ' + root.scrollWidth);
  for (const el of document.querySelectorAll('*')) {
    const overflow = getComputedStyle(el).overflowX;
    if ((overflow === 'auto' || overflow === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
      const name = el.tagName + '.' + String(el.className).slice(0, 40);
      wide.push(name + ' ' + el.scrollWidth + '>' + el.clientWidth);
    }
  }
  return wide;
}
"""


class Watcher:
    """Console errors and failed responses seen by a page, since the last `reset()`."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "response",
            lambda response: (
                response.status >= 400 and self.failed.append(f"{response.status} {response.url}")
            ),
        )

    def reset(self) -> None:
        self.errors.clear()
        self.failed.clear()


@pytest.fixture
def admin_page(page, demo_live, login):
    """`admin` logged in on the demo, with its dashboard figures computed and a week of checks."""
    now = timezone.now()
    usage_snapshot_refresh(now=now)
    CheckCount.objects.bulk_create(
        CheckCount(feature_key=key, day=now.date() - timedelta(days=n), count=10 * (n + 1))
        for n in range(7)
        for key in ("max-members", "4k-streaming")
    )
    watcher = Watcher(page)
    login(page, demo_live, "admin")
    page.watcher = watcher
    return page


def test_dashboard__opened__charts_drawn_with_no_console_error(admin_page, demo_live):
    page = admin_page
    page.watcher.reset()

    page.goto(f"{demo_live.url}/admin/")
    page.wait_for_load_state("networkidle")

    painted = page.evaluate(PAINTED_JS)
    assert len(painted) >= 2, "the dashboard draws who-has-what and checks-per-day charts"
    assert all(pixels > 500 for pixels in painted), painted
    assert page.watcher.errors == []
    assert page.watcher.failed == []


def test_sidebar_and_front_page__every_link__opens_cleanly_and_fits_1400px(admin_page, demo_live):
    page = admin_page
    page.goto(f"{demo_live.url}/admin/")
    sidebar = page.locator("#nav-sidebar, nav").first
    expect(sidebar.get_by_role("link", name="Entitlements")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Scheduled changes")).to_be_visible()
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.getAttribute('href'))")
    pages = sorted(
        {
            urlparse(urljoin(page.url, href)).path
            + (f"?{urlparse(href).query}" if urlparse(href).query else "")
            for href in hrefs
            if href.startswith("/admin/")
            and "logout" not in href
            and not any(part in href for part in ("csv", "export"))
        }
    )
    assert "/admin/audit/scheduledchange/" in pages and "/admin/catalog/entitlement/" in pages

    problems = []
    for path in pages:
        page.watcher.reset()
        response = page.goto(f"{demo_live.url}{path}")
        page.wait_for_load_state("networkidle")
        if response.status >= 400:
            problems.append(f"{path}: {response.status}")
        if page.watcher.errors or page.watcher.failed:
            problems.append(f"{path}: {page.watcher.errors} {page.watcher.failed}")
        wide = page.evaluate(SIDEWAYS_JS)
        if wide:
            problems.append(f"{path} scrolls sideways: {wide}")
    assert problems == []


def test_add_pages__every_model_admin_may_add__opens_without_an_error(admin_page, demo_live):
    page = admin_page
    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="admin")
    add_urls = []
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_add_permission(request):
            continue
        try:
            add_urls.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add"))
        except NoReverseMatch:
            continue
    assert "/admin/subscriptions/override/add/" in add_urls

    problems = []
    for url in add_urls:
        page.watcher.reset()
        response = page.goto(f"{demo_live.url}{url}")
        page.wait_for_load_state("networkidle")
        if response.status >= 400 or page.watcher.errors or page.watcher.failed:
            problems.append(f"{url}: {response.status} {page.watcher.errors} {page.watcher.failed}")
        elif page.locator(".errornote, .errorlist").count():
            problems.append(f"{url}: shows an error on opening")
    assert problems == []


def test_favicon_and_site_links__nothing_leads_to_a_404(admin_page, demo_live):
    page = admin_page
    page.goto(f"{demo_live.url}/admin/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(urljoin(page.url, icon)).status == 200
    assert page.request.get(f"{demo_live.url}/favicon.ico").status == 200

    # There is no public site besides the admin: no "View site" link, and the root leads home.
    page.get_by_text("admin@", exact=False).first.click()
    expect(page.get_by_role("link", name="View site")).to_have_count(0)
    page.goto(f"{demo_live.url}/")
    assert urlparse(page.url).path == "/admin/"

    page.context.clear_cookies()
    page.goto(f"{demo_live.url}/admin/login/")
    expect(page.get_by_text("Return to site")).to_have_count(0)


def test_audit_log__filtered_by_user_with_the_dropdown__exports_that_users_changes_as_csv(
    admin_page, demo_live
):
    page = admin_page
    sales = User.objects.get(username="sales")
    acme = Customer.objects.get(external_id="acme")
    acme.name = "Acme Corporation"
    customer_save(
        customer=acme,
        actor=sales,
        reason="Renamed after the merger, see https://tickets.example/T-7",
        source="admin",
    )

    page.goto(f"{demo_live.url}/admin/")
    page.get_by_role("link", name="Audit log").click()
    page.locator("a", has_text="Filters").first.click()
    user_filter = page.locator("select[name=user__id__exact]")
    # The drop-down as unfold draws it (select2): open it, type, pick.
    user_filter.locator("xpath=following-sibling::span[contains(@class, 'select2')]").first.click()
    page.locator(".select2-search__field").fill("sales")
    page.locator(".select2-results__option", has_text="sales").first.click()
    page.get_by_role("button", name="Apply Filters").click()
    page.wait_for_url("**user__id__exact=*")

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Acme Corporation")
    link = rows.first.get_by_role("link", name="https://tickets.example/T-7")
    assert "noopener" in link.get_attribute("rel")

    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    lines = list(csv.DictReader(io.StringIO(content)))
    assert [(line["user"], line["object"]) for line in lines] == [("sales", "Acme Corporation (acme)")]


def test_customer_history__opened__leads_to_its_subscriptions_and_overrides_entries(admin_page, demo_live):
    page = admin_page
    page.goto(f"{demo_live.url}/admin/")
    page.locator("#nav-sidebar, nav").first.locator("a", has_text="Customers").first.click()
    page.locator("#searchbar").fill("streamfan")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="streamfan", exact=True).first.click()
    page.get_by_role("link", name="history History").click()

    history = page.get_by_test_id("object-history")
    expect(history).to_contain_text("sub-streamfan")
    expect(history).to_contain_text("4k-streaming on sub-streamfan")
    page.get_by_test_id("open-in-audit-log").click()
    expect(page.locator("#result_list")).to_contain_text("4k-streaming on sub-streamfan")
    expect(page.locator("#result_list")).to_contain_text("Stream Fan (streamfan)")
    assert "customer=streamfan" in page.url
    assert page.evaluate(SIDEWAYS_JS) == []
