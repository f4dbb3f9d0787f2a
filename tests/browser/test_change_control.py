"""Change control and per-object permissions, as the demo's people meet them in a browser."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _pick_autocomplete(page, field: str, term: str, choice: str) -> None:
    """Choose `choice` in the admin's autocomplete (select2) for `field`."""
    page.locator(f"#id_{field} + .select2 .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(term)
    page.locator(".select2-results__option", has_text=choice).first.click()


def test_support__grants_override_with_linked_reason__finds_it_in_audit_log_and_csv(page, demo_live, login):
    from subscriptions.models import Subscription

    subscription = Subscription.objects.get(external_id="sub-northwind")
    login(page, demo_live, "support")

    # Support opens the subscription and asks to grant a feature.
    page.goto(f"{demo_live.url}/admin/subscriptions/subscription/{subscription.pk}/change/")
    page.get_by_role("link", name="Grant or revoke a feature").click()
    expect(page).to_have_url(re.compile(r"/override/add/\?subscription="))

    # Only the features tagged for Support are offered (4k-streaming, support-level, and the
    # metered api-calls and ai-tokens).
    page.locator("#id_feature + .select2 .select2-selection").click()
    options = page.locator(".select2-results__option")
    expect(options).to_have_count(4)
    expect(options.filter(has_text="max-members")).to_have_count(0)
    page.keyboard.press("Escape")

    _pick_autocomplete(page, "feature", "support", "support-level")
    page.locator("#id_value").fill("email+chat")
    page.locator("#id_change_reason").fill("Upgrade promised in https://tickets.example/T-42")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()

    # The change is in the audit log with old → new and the reason's link.
    page.goto(f"{demo_live.url}/admin/audit/auditentry/?q=T-42")
    row = page.locator("tr", has_text="support-level").first
    expect(row).to_contain_text("support")
    expect(row).to_contain_text("email+chat")
    expect(row.get_by_role("link", name="https://tickets.example/T-42")).to_have_attribute(
        "href", "https://tickets.example/T-42"
    )

    # And the CSV export of the filtered list holds it.
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [r["user"] for r in rows] == ["support"]
    assert rows[0]["reason"] == "Upgrade promised in https://tickets.example/T-42"
    assert "email+chat" in rows[0]["changes"]


def test_support__sales_feature_read_only__support_feature_grantable(page, demo_live, login):
    from catalog.models import Feature

    login(page, demo_live, "support")
    feature = Feature.objects.get(key="max-members")
    page.goto(f"{demo_live.url}/admin/catalog/feature/{feature.pk}/change/")
    expect(page.get_by_text("max-members").first).to_be_visible()
    expect(page.locator("#id_change_reason")).to_have_count(0)
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)


def test_product__edits_beta_segment__but_not_a_plan(page, demo_live, login):
    from catalog.models import Item
    from segments.models import Segment

    login(page, demo_live, "product")
    beta = Segment.objects.get(key="beta")
    page.goto(f"{demo_live.url}/admin/segments/segment/{beta.pk}/change/")
    page.locator("#id_name").fill("Common beta users (2027)")
    page.locator("#id_change_reason").fill("Renamed for the 2027 programme")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    beta.refresh_from_db()
    assert beta.name == "Common beta users (2027)"

    plan = Item.objects.get(key="business")
    page.goto(f"{demo_live.url}/admin/catalog/item/{plan.pk}/change/")
    expect(page.locator("#id_change_reason")).to_have_count(0)
    expect(page.locator("#id_name")).to_have_count(0)  # shown as text, not as a field


def test_login__locked_out_after_repeated_failures__refused_even_with_the_right_password(page, demo_live):
    from django.conf import settings

    from subscriptions.management.commands.seed_demo import DEMO_PASSWORD

    page.goto(f"{demo_live.url}/admin/login/?next=/admin/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.get_by_label("Username").fill("sales")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
    page.goto(f"{demo_live.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("sales")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/admin/login/?next=/admin/")) as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 429
    expect(page.get_by_text("Account locked")).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"://[^/]+/admin/$"))
