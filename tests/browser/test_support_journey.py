"""Support's first journey: a customer calls, support finds them and sees what they have and why."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_support_journey__streamfan_searched__resolved_entitlements_show_override_and_plan(
    page, demo_live, login
):
    # Given the demo, and support logged in through the login form
    login(page, demo_live, "support")

    # When support opens Customers, searches for streamfan and opens it
    page.get_by_role("link", name="Customers", exact=True).first.click()
    expect(page.get_by_role("link", name="streamfan", exact=True)).to_be_visible()
    search = page.locator("input[name=q]")
    search.fill("streamfan")
    search.press("Enter")
    expect(page.get_by_role("link", name="acme", exact=True)).to_have_count(0)
    page.get_by_role("link", name="streamfan", exact=True).click()

    # Then the resolved entitlements show the live 4K override apart from what the plan gives
    expect(page.get_by_role("heading", name="Stream Fan")).to_be_visible()
    resolved = page.get_by_test_id("resolved-entitlements")
    expect(resolved).to_be_visible()

    override = resolved.get_by_test_id("explicit-entitlements").locator('tr[data-feature="4k-streaming"]')
    expect(override).to_be_visible()
    expect(override.locator("td").nth(0)).to_have_text("4k-streaming")
    expect(override.locator("td").nth(1)).to_have_text("on")
    expect(override.locator("td").nth(2)).to_have_text(re.compile(r"^\s*override:\S+"))

    streams = resolved.get_by_test_id("inherited-entitlements").locator(
        'tr[data-feature="max-simultaneous-streams"]'
    )
    expect(streams).to_be_visible()
    expect(streams.locator("td").nth(1)).to_have_text("1")
    expect(streams.locator("td").nth(2)).to_have_text("plan:streaming-standard")
    # The override is not also listed as inherited.
    expect(resolved.get_by_test_id("inherited-entitlements").locator('tr[data-feature="4k-streaming"]')).to_have_count(0)
