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
    # The sidebar link (its accessible name starts with the icon's ligature, "groups").
    page.get_by_role("link", name=re.compile(r"\bCustomers$")).first.click()
    expect(page.get_by_role("link", name="acme", exact=True)).to_be_visible()
    search = page.locator("input[name=q]")
    search.fill("streamfan")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=streamfan"))
    expect(page.get_by_role("link", name="acme", exact=True)).to_have_count(0)
    page.get_by_role("link", name="streamfan", exact=True).click()

    # Then the resolved entitlements show the live 4K override apart from what the plan gives
    expect(page.get_by_role("heading", name="Stream Fan (streamfan)")).to_be_visible()
    section = page.locator("fieldset").filter(
        has=page.get_by_role("heading", name="Resolved entitlements", exact=True)
    )
    resolved = section.get_by_test_id("resolved-entitlements")
    expect(resolved).to_be_visible()

    explicit = resolved.get_by_test_id("explicit-entitlements")
    override = explicit.locator('tr[data-feature="4k-streaming"]').locator("td")
    expect(override.nth(0)).to_have_text("4k-streaming")
    expect(override.nth(1)).to_have_text("on")
    expect(override.nth(2)).to_have_text(re.compile(r"^override:\S+$"))

    inherited = resolved.get_by_test_id("inherited-entitlements")
    streams = inherited.locator('tr[data-feature="max-simultaneous-streams"]').locator("td")
    expect(streams.nth(0)).to_have_text("max-simultaneous-streams")
    expect(streams.nth(1)).to_have_text("1")
    expect(streams.nth(2)).to_have_text("plan:streaming-standard")
    # What the override answers is not listed again as inherited.
    expect(inherited.locator('tr[data-feature="4k-streaming"]')).to_have_count(0)
