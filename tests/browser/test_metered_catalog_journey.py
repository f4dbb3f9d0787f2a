"""Metered features in the browser: a catalog admin creates one through the feature form's select
boxes and gives a plan a monthly limit of it on the plan's page; a product manager may not add
a feature at all."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import no_sideways_scroll, open_sidebar, pick_autocomplete, save, screenshot
from tests.browser.test_product_journey import add_row

pytestmark = pytest.mark.browser

REASON = "Usage pricing, CAT-31"


def test_metered_journey__catalog_admin_creates_a_metered_feature_and_gives_basic_a_limit(
    page, demo_live, login
):
    from catalog.models import Entitlement, Feature

    login(page, demo_live, "catalog")

    # The feature, its kind and its metering chosen in the form's select boxes by their labels.
    open_sidebar(page, "Features")
    page.get_by_title("Add feature").click()
    expect(page).to_have_title(re.compile(r"^Add feature"))
    page.get_by_label("Key").fill("api-credits")
    page.get_by_label("Name").fill("API credits")
    page.get_by_label("Kind").select_option(label="Metered (a usage limit per period)")
    expect(
        page.get_by_text("Metered features only: a plan's value is then its usage limit per period.")
    ).to_be_visible()
    page.get_by_label("Period", exact=True).select_option(label="Month")
    page.get_by_label("Period anchor").select_option(label="The calendar (UTC)")
    page.get_by_label("Limit type").select_option(label="Hard: consumption beyond the limit is refused")
    no_sideways_scroll(page)
    screenshot(page, "metered-feature-add")
    save(page, REASON)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    feature = Feature.objects.get(key="api-credits")
    assert (feature.kind, feature.period, feature.period_anchor, feature.limit_type) == (
        "metered",
        "month",
        "calendar",
        "hard",
    )

    # Reopened, the form shows what was chosen.
    page.locator("#result_list").get_by_role("link", name="api-credits", exact=True).click()
    expect(page.get_by_label("Kind")).to_have_value("metered")
    expect(page.get_by_label("Period", exact=True)).to_have_value("month")
    expect(page.get_by_label("Period anchor")).to_have_value("calendar")
    expect(page.get_by_label("Limit type")).to_have_value("hard")
    no_sideways_scroll(page)
    screenshot(page, "metered-feature-change")

    # Basic gets 5,000 a month of it, on the plan's own page.
    open_sidebar(page, "Plans, add-ons and charges")
    page.get_by_role("link", name="basic", exact=True).click()
    expect(page).to_have_title(re.compile(r"^basic \|"))
    row = add_row(page, "entitlements")
    pick_autocomplete(page, f"id_entitlements-{row}-feature", "api-credits", "api-credits")
    page.locator(f"#id_entitlements-{row}-value").fill("5000")
    screenshot(page, "metered-plan-limit")
    save(page, REASON)
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    assert Entitlement.objects.get(item__key="basic", feature__key="api-credits").value == 5000

    # Seen saved: on the plan's page and in the list of entitlements.
    page.locator("#result_list").get_by_role("link", name="basic", exact=True).click()
    saved = page.locator("tr.form-row", has=page.locator("option[selected]", has_text="api-credits"))
    expect(saved.locator("input[name$='-value']")).to_have_value("5000")
    no_sideways_scroll(page)
    screenshot(page, "metered-plan-after-save")
    open_sidebar(page, "Entitlements")
    page.locator("input[name=q]").fill("api-credits")
    page.locator("input[name=q]").press("Enter")
    expect(page.locator("tr", has_text="basic")).to_contain_text("5,000 per month")
    screenshot(page, "metered-entitlements-list")


def test_metered_journey__a_limit_that_is_no_number__the_plan_page_says_what_fits(page, demo_live, login):
    from catalog.models import Entitlement

    login(page, demo_live, "catalog")
    open_sidebar(page, "Plans, add-ons and charges")
    page.get_by_role("link", name="basic", exact=True).click()
    api_calls = page.locator("option[selected]", has_text=re.compile(r"^\s*api-calls\s*$"))
    limit = page.locator("tr.form-row", has=api_calls).locator("input[name$='-value']")
    expect(limit).to_have_value("1000")

    limit.fill("unlimited")
    save(page, REASON)

    expect(page.get_by_text("api-calls does not allow unlimited: give a whole number.")).to_be_visible()
    screenshot(page, "metered-plan-limit-refused")
    assert Entitlement.objects.get(item__key="basic", feature__key="api-calls").value == 1000


def test_metered_journey__product_manager__no_way_to_add_a_feature(page, demo_live, login):
    from catalog.models import Feature

    login(page, demo_live, "product")
    open_sidebar(page, "Features")
    expect(page.get_by_role("link", name="api-calls", exact=True)).to_be_visible()
    expect(page.get_by_title("Add feature")).to_have_count(0)
    screenshot(page, "metered-product-features")

    response = page.goto(f"{demo_live.url}/admin/catalog/feature/add/")

    assert response.status == 403
    screenshot(page, "metered-product-add-refused")
    assert not Feature.objects.filter(key="api-credits").exists()
