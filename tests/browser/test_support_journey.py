"""Support's first journey: a customer calls, support finds them and sees what they have and why."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

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


# --- a grant for next weekend -------------------------------------------------------------------


def _open_customer(page, external_id: str) -> None:
    """From anywhere in the admin: sidebar → Customers → search → the customer."""
    page.get_by_role("link", name=re.compile(r"\bCustomers$")).first.click()
    search = page.locator("input[name=q]")
    search.fill(external_id)
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]q={external_id}"))
    page.get_by_role("link", name=external_id, exact=True).click()


def _next_weekend(today: date) -> tuple[date, date]:
    """The coming Saturday (a week on, when today is one) and the Monday after it."""
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return saturday, saturday + timedelta(days=2)


def _fill_datetime(page, field: str, day: date, time: str) -> None:
    page.locator(f"#id_{field}_0").fill(day.isoformat())
    page.locator(f"#id_{field}_1").fill(time)


def test_support_journey__grants_4k_for_next_weekend__listed_as_coming_with_start_and_end(
    page, demo_live, login
):
    from django.utils import timezone

    from subscriptions.models import Override

    saturday, monday = _next_weekend(timezone.now().date())
    login(page, demo_live, "support")

    # Support finds acme from the front page and sees what it has, from where, until when.
    _open_customer(page, "acme")
    resolved = page.get_by_test_id("resolved-entitlements")
    seats = resolved.get_by_test_id("inherited-entitlements").locator('tr[data-feature="max-members"]')
    expect(seats.locator("td").nth(1)).to_have_text("35")
    expect(seats.get_by_test_id("contributions")).to_contain_text("addon:extra-seats 2 × 5 = 10")
    expect(resolved).to_contain_text("No override is coming.")
    screenshot(page, "support-acme-before")

    # To its subscription, and "Grant or revoke a feature".
    page.get_by_role("link", name="sub-acme", exact=True).click()
    page.get_by_role("link", name="Grant or revoke a feature").click()
    expect(page).to_have_url(re.compile(r"/override/add/\?subscription="))

    # Only Support's features are offered: 4K yes, the seats Sales negotiate no.
    page.locator("#id_feature + .select2 .select2-selection").click()
    options = page.locator(".select2-results__option")
    expect(options.filter(has_text="4k-streaming")).to_have_count(1)
    expect(options.filter(has_text="max-members")).to_have_count(0)
    options.filter(has_text="4k-streaming").click()

    page.locator("#id_value").fill("on")
    expect(page.get_by_text("Valid from (UTC)")).to_be_visible()
    _fill_datetime(page, "valid_from", saturday, "00:00")
    _fill_datetime(page, "valid_until", monday, "00:00")
    page.locator("#id_change_reason").fill("Event weekend, see https://tickets.example/SUP-101")
    screenshot(page, "support-grant-form")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()

    # Back on the customer's page, the grant is listed as coming, with its start and end.
    _open_customer(page, "acme")
    coming = page.get_by_test_id("coming-overrides").locator('tr[data-feature="4k-streaming"] td')
    expect(coming.nth(1)).to_have_text("grant on")
    expect(coming.nth(2)).to_have_text("sub-acme")
    expect(coming.nth(3)).to_have_text(f"{saturday.isoformat()} 00:00 UTC")
    expect(coming.nth(4)).to_have_text(f"{monday.isoformat()} 00:00 UTC")
    four_k = page.get_by_test_id("inherited-entitlements").locator('tr[data-feature="4k-streaming"] td')
    expect(four_k.nth(1)).to_have_text("off")
    expect(four_k.nth(3)).to_have_text(f"{saturday.isoformat()} 00:00 UTC")  # holds until it starts
    screenshot(page, "support-acme-after")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400

    override = Override.objects.get(subscription__external_id="sub-acme", feature__key="4k-streaming")
    assert (
        override.history.get().history_change_reason == "Event weekend, see https://tickets.example/SUP-101"
    )


def test_support_journey__forged_post_of_a_sales_feature__refused_and_nothing_created(page, demo_live, login):
    from catalog.models import Feature
    from subscriptions.models import Override, Subscription

    subscription = Subscription.objects.get(external_id="sub-acme")
    seats = Feature.objects.get(key="max-members")
    login(page, demo_live, "support")
    add = f"{demo_live.url}/admin/subscriptions/override/add/"
    page.goto(f"{add}?subscription={subscription.pk}")
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")

    response = page.request.post(
        add,
        form={
            "csrfmiddlewaretoken": token,
            "subscription": str(subscription.pk),
            "feature": str(seats.pk),
            "effect": "grant",
            "value": "40",
            "change_reason": "Forged",
        },
        headers={"Referer": add},
    )

    assert response.status == 403 or "Select a valid choice" in response.text()
    assert not Override.objects.filter(subscription=subscription, feature=seats).exists()
