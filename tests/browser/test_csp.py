"""The Content-Security-Policy in a real browser: the admin's pages (dashboard charts, sidebar,
changelists, a feature's form with its widgets, the import page, the audit log) and the API's
Swagger UI all work under the policy, and Chromium refuses nothing on them."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from reporting.services import usage_snapshot_refresh
from tests.browser.conftest import open_sidebar, screenshot

pytestmark = pytest.mark.browser


# Chromium reports a refused resource both on the console and as a DOM event; catch both.
LISTEN_FOR_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = e.sourceFile + ':' + e.lineNumber;
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + where);
});
"""


class Refusals:
    """Console messages and page errors about the policy, across every page visited."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.violations: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(LISTEN_FOR_VIOLATIONS)
        page.on("console", lambda message: self.console.append(f"{page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))

    def collect(self) -> None:
        """Read the page's violation events before leaving it."""
        self.violations += [f"{self.page.url}: {v}" for v in self.page.evaluate("window.__cspViolations")]

    def about_the_policy(self) -> list[str]:
        return [
            text
            for text in self.console + self.errors
            if "Content Security Policy" in text or "Refused to" in text or "unsafe-eval" in text
        ] + self.violations


def assert_policy_sent(response) -> None:
    policy = response.header_value("Content-Security-Policy")
    assert policy, f"no Content-Security-Policy on {response.url}"
    assert "default-src 'self'" in policy


def test_csp__admin_pages_and_api_docs__work_with_nothing_refused(page, demo_live, login):
    # Given the demo with its figures computed, and the admin watching for refusals
    usage_snapshot_refresh(now=timezone.now())
    refusals = Refusals(page)
    responses = []
    page.on("response", lambda r: responses.append(r) if r.request.resource_type == "document" else None)

    # When the administrator logs in: the dashboard's charts are drawn by Chart.js
    login(page, demo_live, "admin")
    expect(page.get_by_test_id("reporting-dashboard")).to_be_visible()
    page.wait_for_function("[...document.querySelectorAll('canvas.chart')].some((c) => Chart.getChart(c))")
    screenshot(page, "csp-dashboard")
    refusals.collect()

    # the sidebar (Alpine.js) leads to the features' changelist
    open_sidebar(page, "Features")
    expect(page.get_by_role("heading", name=re.compile("feature", re.I)).first).to_be_visible()
    search = page.locator("#searchbar")  # the changelist's own search box
    search.fill("max-members")
    search.press("Enter")
    page.get_by_role("link", name=re.compile("max-members|Max members", re.I)).first.click()

    # a feature's form, with its widgets (select2 opens its list) and tabs (htmx loads the
    # Reporting tab, Chart.js draws its chart)
    expect(page.locator("#feature_form")).to_be_visible()
    page.locator(".select2-selection").first.click()
    expect(page.locator(".select2-results__option").first).to_be_visible()
    page.keyboard.press("Escape")
    screenshot(page, "csp-feature")
    reporting = page.get_by_role("link", name="Reporting", exact=True)
    if not reporting.is_visible():
        # unfold folds tabs that did not fit when the page was measured into its "more" menu
        page.locator("#tabs-wrapper").get_by_text("more_horiz").click()
    reporting.click()
    tab = page.get_by_test_id("feature-reporting")
    expect(tab).to_be_visible()
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=feature-reporting] canvas.chart')]"
        ".some((c) => Chart.getChart(c))"
    )
    screenshot(page, "csp-feature-reporting")
    refusals.collect()

    # the features' import page (django-import-export)
    page.goto(f"{demo_live.url}/admin/catalog/feature/import/")
    expect(page.get_by_role("button", name="Preview")).to_be_visible()
    screenshot(page, "csp-import")
    refusals.collect()

    # the audit log, from the sidebar
    open_sidebar(page, "Audit log")
    expect(page.locator("#result_list")).to_be_visible()
    screenshot(page, "csp-audit")
    refusals.collect()

    # the API's Swagger UI draws the schema
    page.goto(f"{demo_live.url}/api/docs/")
    expect(page.get_by_text("Entitle API").first).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    screenshot(page, "csp-docs")
    refusals.collect()

    # Then every page carried the policy, and the browser refused nothing under it
    visited = [r for r in responses if r.status == 200]
    assert len(visited) >= 6
    for response in visited:
        assert_policy_sent(response)
    assert refusals.about_the_policy() == []
    assert refusals.errors == []
