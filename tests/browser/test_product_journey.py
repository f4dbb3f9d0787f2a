"""A product manager in the browser: puts a customer in the beta segment and sees the beta
version served, edits and reorders the targeting rules of a feature tagged for Product, and
finds the feature's definition read-only."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import no_sideways_scroll, open_sidebar, pick_autocomplete, save, screenshot

pytestmark = pytest.mark.browser


def served_to(page: Page, customer: str) -> str:
    """What the customer's page says `change-request-version` answers."""
    open_sidebar(page, "Customers")
    page.locator("input[name=q]").fill(customer)
    page.locator("input[name=q]").press("Enter")
    page.get_by_role("link", name=customer, exact=True).click()
    resolved = page.get_by_test_id("resolved-entitlements")
    row = resolved.locator('tr[data-feature="change-request-version"]').first
    return row.locator("td").nth(1).inner_text().strip()


def open_feature(page: Page, key: str) -> None:
    open_sidebar(page, "Features")
    page.get_by_role("link", name=key, exact=True).click()


def add_row(page: Page, prefix: str) -> int:
    """Click the table's "Add another" link; returns the new row's index."""
    index = int(page.locator(f"#id_{prefix}-TOTAL_FORMS").input_value())
    page.locator(f"#{prefix}-group").get_by_text(re.compile(r"^Add another")).click()
    return index


def test_product_journey__beta_segment_rules_and_read_only_definition(page, demo_live, login):
    from catalog.models import Feature
    from segments.models import TargetingRule

    login(page, demo_live, "product")
    assert served_to(page, "northwind") == "v1"

    # Northwind joins "Common beta users" in the segment's list.
    open_sidebar(page, "Segments")
    page.get_by_role("link", name="beta", exact=True).click()
    no_sideways_scroll(page)
    row = add_row(page, "members")
    pick_autocomplete(page, f"id_members-{row}-customer", "northwind", "Northwind (northwind)")
    page.locator(f"#id_members-{row}-kind").select_option("included")
    screenshot(page, "product-segment")
    save(page, "Northwind joins the beta, PM-12")
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    assert served_to(page, "northwind") == "v2"

    # The feature's definition is read-only for Product: no box for any of it.
    open_feature(page, "change-request-version")
    for field in ("name", "kind", "status", "levels", "markets", "fallback", "keep_when_delinquent"):
        expect(page.locator(f"[name={field}]")).to_have_count(0)
    expect(page.get_by_text("Custom (one of an ordered list of levels)")).to_be_visible()
    expect(page.get_by_label("Schedule this change for…")).to_have_count(0)
    no_sideways_scroll(page)
    screenshot(page, "product-feature")

    # A second rule, saved; then the two reordered, saved.
    row = add_row(page, "rules")
    page.locator(f"#id_rules-{row}-position").fill("2")
    pick_autocomplete(page, f"id_rules-{row}-segment", "basic", "Basic subscription or higher")
    page.locator(f"#id_rules-{row}-value").fill("v1")
    save(page, "Basic and up stay on v1, PM-13")
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    rules = TargetingRule.objects.filter(feature__key="change-request-version").order_by("position")
    assert [(r.segment.key, r.value) for r in rules] == [("beta", "v2"), ("basic-or-higher", "v1")]

    open_feature(page, "change-request-version")
    page.locator("#id_rules-0-position").fill("2")
    page.locator("#id_rules-1-position").fill("1")
    save(page, "Basic and up first, PM-14")
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    rules = TargetingRule.objects.filter(feature__key="change-request-version").order_by("position")
    assert [r.segment.key for r in rules] == ["basic-or-higher", "beta"]
    open_feature(page, "change-request-version")
    expect(page.locator("#id_rules-0-segment option[selected]")).to_have_text("Basic subscription or higher")
    assert served_to(page, "northwind") == "v1"  # the first matching rule wins now

    # A forged field in the form changes nothing of the definition.
    feature = Feature.objects.get(key="change-request-version")
    history = feature.history.count()
    open_feature(page, "change-request-version")
    expect(page.locator("#rules-group")).to_be_attached()
    page.evaluate(
        """() => {
            const form = document.querySelector("#rules-group").closest("form");
            for (const [name, value] of [["status", "archived"], ["kind", "switch"], ["fallback", "allow"]]) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = name; input.value = value;
                form.appendChild(input);
            }
        }"""
    )
    save(page, "Forged, PM-15")
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    feature.refresh_from_db()
    assert (feature.status, feature.kind, feature.fallback) == ("active", "custom", "deny")
    assert feature.history.count() == history
