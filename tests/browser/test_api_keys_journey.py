"""An admin makes an API key and revokes it, each time asked why, and finds both in the
audit log with the reasons."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from api.models import APIKey

pytestmark = pytest.mark.browser


def test_journey__create_and_revoke_with_reasons__both_in_the_audit_log(page: Page, demo_live, login):
    login(page, demo_live, "admin")

    # The key admin, from the sidebar's list of every application.
    page.get_by_text("All applications").click()
    page.get_by_role("link", name="API keys").first.click()
    page.get_by_role("link", name="Add API key").click()
    page.get_by_label("Name").fill("billing-sync")
    with page.expect_popup() as lookup:  # the owner's magnifier opens the list of users
        page.locator("#lookup_id_owner").click()
    lookup.value.get_by_role("link", name="sales", exact=True).click()
    expect(page.locator("#id_owner")).to_have_value(str(User.objects.get(username="sales").pk))
    page.get_by_label("Reason for this change").fill("OPS-42: billing sync needs its own key")
    page.get_by_role("button", name="Save", exact=True).click()

    shown = page.get_by_text(re.compile(r"The key for billing-sync is: \S+ — copy it now"))
    expect(shown).to_be_visible()

    # Its page: revoke, asked why.
    page.get_by_role("link", name="billing-sync").first.click()
    page.get_by_role("link", name="Revoke").click()
    reason = page.get_by_label("Reason for this change")
    page.get_by_role("button", name="Revoke this key").click()  # no reason: the browser asks for one
    assert reason.evaluate("element => element.validity.valueMissing")
    reason.fill("   ")  # only blanks: the page comes back with the error
    page.get_by_role("button", name="Revoke this key").click()
    expect(page.get_by_test_id("reason-error")).to_be_visible()
    assert not APIKey.objects.get(name="billing-sync").revoked
    page.get_by_label("Reason for this change").fill("Leaked in a build log, see https://tickets.example/T-9")
    page.get_by_role("button", name="Revoke this key").click()
    expect(page.get_by_text(re.compile(r"Revoked billing-sync \(\w+…\)\."))).to_be_visible()
    assert APIKey.objects.get(name="billing-sync").revoked

    # The audit log: both writes, with who and why.
    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#result_list tbody tr", has_text="billing-sync")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Leaked in a build log")
    expect(rows.nth(0).get_by_role("link", name="https://tickets.example/T-9")).to_be_visible()
    expect(rows.nth(0)).to_contain_text("admin")
    expect(rows.nth(1)).to_contain_text("OPS-42: billing sync needs its own key")
