"""A catalog admin's day in the browser: features of every kind (one offered in two markets,
chosen in the searchable country box), a feature put on two plans, a plan superseded, and an
entitlement change scheduled and applied by the sweep."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import no_sideways_scroll, open_sidebar, pick_autocomplete, save, screenshot

pytestmark = pytest.mark.browser

REASON = "Catalog review CAT-7"


def pick_countries(page: Page, *names: str) -> None:
    """Type each country's name into the markets box and take the match, as a person does."""
    for name in names:
        page.locator("#id_markets + .select2 .select2-search__field").click()
        page.keyboard.type(name)
        page.locator(".select2-results__option--highlighted", has_text=name).click()


def add_feature(page: Page, key: str, name: str, kind: str, **fields: str) -> None:
    open_sidebar(page, "Features")
    page.get_by_title("Add feature").click()
    expect(page).to_have_title(re.compile(r"^Add feature"))
    no_sideways_scroll(page)
    page.locator("#id_key").fill(key)
    page.locator("#id_name").fill(name)
    page.locator("#id_kind").select_option(kind)
    for field, value in fields.items():
        page.locator(f"#id_{field}").fill(value)


def test_catalog_journey__features_plans_supersede_and_schedule__all_seen_in_the_admin(
    page, demo_live, login
):
    from django.utils import timezone

    from audit.models import ScheduledChange
    from audit.scheduling import sweep_due_changes
    from catalog.models import Entitlement, Feature, Item

    login(page, demo_live, "catalog")

    # A switch offered in two markets, chosen by typing in the country box.
    add_feature(page, "offline-mode", "Offline mode", "switch")
    pick_countries(page, "Ireland", "Germany")
    screenshot(page, "catalog-feature-add")
    save(page, REASON)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    assert sorted(code.code for code in Feature.objects.get(key="offline-mode").markets) == ["DE", "IE"]

    # A quantity with levels, a range with bounds and a custom with levels.
    add_feature(page, "projects", "Projects", "quantity", levels="3, 10, 30")
    save(page, REASON)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    add_feature(page, "exports-per-day", "Exports per day", "range", min_value="1", max_value="50")
    save(page, REASON)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    add_feature(page, "sla", "Service level", "custom", levels="bronze, silver, gold")
    save(page, REASON)
    expect(page.get_by_text("was added successfully")).to_be_visible()
    assert dict(Feature.objects.filter(key__in=["projects", "sla"]).values_list("key", "levels")) == {
        "projects": [3, 10, 30],
        "sla": ["bronze", "silver", "gold"],
    }

    # Reopened, the switch shows both markets; the existing live-sports shows its two.
    page.get_by_role("link", name="offline-mode", exact=True).click()
    markets = page.locator("#id_markets + .select2 .select2-selection__choice")
    expect(markets).to_have_count(2)
    expect(markets.filter(has_text="Ireland")).to_have_count(1)
    expect(markets.filter(has_text="Germany")).to_have_count(1)
    no_sideways_scroll(page)
    screenshot(page, "catalog-feature-change")
    open_sidebar(page, "Features")
    page.locator("input[name=q]").fill("live-sports")
    page.locator("input[name=q]").press("Enter")
    page.get_by_role("link", name="live-sports", exact=True).click()
    expect(page.locator("#id_markets + .select2 .select2-selection__choice")).to_have_count(2)
    no_sideways_scroll(page)

    # Projects on two plans, a level each, in the Entitlements list.
    for plan, level in (("basic", "3"), ("standard", "10")):
        open_sidebar(page, "Entitlements")
        page.get_by_title("Add entitlement").click()
        pick_autocomplete(page, "id_item", plan, plan)
        pick_autocomplete(page, "id_feature", "projects", "projects")
        page.locator("#id_value").fill(level)
        save(page, REASON)
        expect(page.get_by_text("was added successfully")).to_be_visible()
    no_sideways_scroll(page)
    assert dict(Entitlement.objects.filter(feature__key="projects").values_list("item__key", "value")) == {
        "basic": 3,
        "standard": 10,
    }

    # An empty value is answered with what would fit.
    open_sidebar(page, "Entitlements")
    page.get_by_title("Add entitlement").click()
    pick_autocomplete(page, "id_item", "advanced", "advanced")
    pick_autocomplete(page, "id_feature", "projects", "projects")
    save(page, REASON)
    expect(page.get_by_text("Choose a level of projects: 3, 10, 30.")).to_be_visible()
    expect(page.get_by_text("None is not")).to_have_count(0)

    # Supersede basic: the successor is told apart by its name, the old plan is legacy.
    open_sidebar(page, "Plans, add-ons and charges")
    expect(page).to_have_title(re.compile(r"^Select plan, add-on or charge to change"))
    no_sideways_scroll(page)
    page.get_by_role("link", name="basic", exact=True).click()
    expect(page).to_have_title(re.compile(r"^basic \|"))
    no_sideways_scroll(page)
    screenshot(page, "catalog-item-change")
    page.get_by_role("link", name="Supersede").click()
    page.get_by_label("Key of the new plan").fill("basic-2027")
    page.get_by_label("Reason for this change").fill(REASON)
    page.get_by_role("button", name="Supersede").click()
    expect(page.get_by_text("basic is now legacy; new subscriptions go on basic-2027.")).to_be_visible()
    expect(page.locator("#id_name")).to_have_value("Basic (basic-2027)")
    open_sidebar(page, "Plans, add-ons and charges")
    old_row = page.locator("tr", has=page.get_by_role("link", name="basic", exact=True))
    expect(old_row).to_contain_text("Legacy")
    expect(old_row).to_contain_text("basic-2027")
    assert Item.objects.get(key="basic-2027").entitlements.get(feature__key="projects").value == 3

    # Schedule standard's projects to 30 for tomorrow; the sweep applies it when due.
    open_sidebar(page, "Entitlements")
    page.locator("input[name=q]").fill("projects")
    page.locator("input[name=q]").press("Enter")
    page.locator("tr", has_text="standard").get_by_role("link").first.click()
    page.locator("#id_value").fill("30")
    when = timezone.now() + timedelta(days=1)
    page.locator("#id_schedule_for_0").fill(when.strftime("%Y-%m-%d"))
    page.locator("#id_schedule_for_1").fill("09:00")
    no_sideways_scroll(page)
    screenshot(page, "catalog-entitlement-schedule")
    save(page, REASON)
    expect(page.get_by_text(re.compile(r"Scheduled for .* UTC: nothing changes until then"))).to_be_visible()
    change = ScheduledChange.objects.get()
    assert change.status == ScheduledChange.Status.PENDING
    assert Entitlement.objects.get(item__key="standard", feature__key="projects").value == 10

    sweep_due_changes(now=change.effective_at + timedelta(minutes=1))

    change.refresh_from_db()
    assert change.status == ScheduledChange.Status.APPLIED, change.error
    open_sidebar(page, "Plans, add-ons and charges")
    page.get_by_role("link", name="standard", exact=True).click()
    row = page.locator("tr.form-row", has=page.locator("option[selected]", has_text="projects"))
    expect(row.locator("input[name$='-value']")).to_have_value("30")
    no_sideways_scroll(page)
    screenshot(page, "catalog-plan-after-schedule")
