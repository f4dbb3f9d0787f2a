"""Sales journeys: negotiated seats, add-ons whose parts show on the customer's page, and a new
customer with a subscription, chosen through the searchable select boxes as drawn."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

REASON = "Contract signed, see https://crm.example/deal/881"


def _sidebar(page, name: str) -> None:
    """A sidebar link (its accessible name starts with the icon's ligature)."""
    page.get_by_role("link", name=re.compile(rf"\b{name}$")).first.click()


def _open(page, section: str, term: str, link: str) -> None:
    """Sidebar → section → search → the row's link."""
    _sidebar(page, section)
    search = page.locator("input[name=q]")
    search.fill(term)
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]q={term}"))
    page.get_by_role("link", name=link, exact=True).click()


def _choose(page, selector: str, term: str, choice: str) -> None:
    """Open a select box drawn by select2, type to search, pick the choice."""
    page.locator(f"{selector} + .select2 .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(term)
    page.locator(".select2-results__option", has_text=choice).first.click()


def _save(page) -> None:
    page.get_by_role("button", name="Save", exact=True).click()


def test_sales_journey__grants_40_negotiated_seats_on_business__answered_as_the_override(
    page, demo_live, login
):
    login(page, demo_live, "sales")

    _open(page, "Customers", "umbrella", "umbrella")
    page.get_by_role("link", name="sub-umbrella", exact=True).click()
    page.get_by_role("link", name="Grant or revoke a feature").click()
    _choose(page, "#id_feature", "max", "max-members")
    page.locator("#id_value").fill("40")  # not one of the plans' levels (5, 10, 25, 50)
    page.locator("#id_change_reason").fill(REASON)
    _save(page)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("40")

    _open(page, "Customers", "umbrella", "umbrella")
    seats = page.get_by_test_id("explicit-entitlements").locator('tr[data-feature="max-members"] td')
    expect(seats.nth(1)).to_have_text("40")
    expect(seats.nth(2)).to_have_text(re.compile(r"^override:\d+$"))
    screenshot(page, "sales-umbrella-40")


def test_sales_journey__two_extra_seats_added__customer_page_shows_the_parts_of_the_sum(
    page, demo_live, login
):
    login(page, demo_live, "sales")

    _open(page, "Subscriptions", "umbrella", "sub-umbrella")
    page.get_by_role("link", name=re.compile("Add another Add-on", re.I)).click()
    _choose(page, "#id_addons-0-addon", "extra", "extra-seats")
    page.locator("#id_addons-0-quantity").fill("2")
    page.locator("#id_change_reason").fill(REASON)
    screenshot(page, "sales-addons-form")
    _save(page)
    expect(page.get_by_text("was changed successfully")).to_be_visible()

    _open(page, "Customers", "umbrella", "umbrella")
    seats = page.get_by_test_id("inherited-entitlements").locator('tr[data-feature="max-members"]')
    expect(seats.locator("td").nth(1)).to_have_text("35")
    parts = seats.get_by_test_id("contributions").locator("li")
    expect(parts).to_have_text(["plan:business 25", "+ addon:extra-seats 2 × 5 = 10"])
    screenshot(page, "sales-umbrella-parts")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400


def test_sales_journey__new_customer_and_subscription__legacy_plan_refused_active_plan_taken(
    page, demo_live, login
):
    from subscriptions.models import Customer, Subscription

    login(page, demo_live, "sales")

    # A new customer, its country searched for by typing.
    _sidebar(page, "Customers")
    page.get_by_title("Add customer").click()
    page.locator("#id_external_id").fill("wayne")
    page.locator("#id_name").fill("Wayne Enterprises")
    _choose(page, "#id_country", "Germ", "Germany")
    page.locator("#id_change_reason").fill(REASON)
    screenshot(page, "sales-new-customer")
    _save(page)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    assert Customer.objects.get(external_id="wayne").country.code == "DE"

    # A subscription for it: the legacy plan is offered marked, and refused with a clear message.
    _sidebar(page, "Subscriptions")
    page.get_by_title("Add subscription").click()
    page.locator("#id_external_id").fill("sub-wayne")
    _choose(page, "#id_customer", "wayne", "Wayne Enterprises")
    page.locator("#id_plan + .select2 .select2-selection").click()
    expect(
        page.locator(".select2-results__option", has_text="Business (2024 prices) (legacy)")
    ).to_have_count(1)
    page.locator(".select2-results__option", has_text="Business (2024 prices) (legacy)").click()
    page.locator("#id_change_reason").fill(REASON)
    _save(page)
    expect(
        page.get_by_text(
            "Business (2024 prices) is a legacy (grandfathered) plan: subscriptions already on it keep "
            "it, but no new subscription may be put on it. Choose an active plan."
        )
    ).to_be_visible()
    screenshot(page, "sales-legacy-refused")
    assert not Subscription.objects.filter(external_id="sub-wayne").exists()

    _choose(page, "#id_plan", "Business", "Business")
    page.locator(".select2-container--open").wait_for(state="detached")
    _save(page)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    subscription = Subscription.objects.get(external_id="sub-wayne")
    assert (subscription.customer.external_id, subscription.plan.key) == ("wayne", "business")
