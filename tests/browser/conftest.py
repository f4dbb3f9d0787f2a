"""The Playwright harness for admin journeys: Debian's Chromium against pytest-django's live_server.

Every browser test is marked ``@pytest.mark.browser`` (docs/operations.md, tests). The role groups
and tags come from a data migration, and a transactional test ends by emptying every table:
``demo_live`` puts them back (``restore_roles``), so each journey starts from the migrated state.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

# live_server runs Django in a thread while Playwright's sync API holds an event loop in this one.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Our pages answer in well under a second; a failing journey should fail fast, not after 30 s.
TIMEOUT_MS = 5_000
# Journeys save what they saw here, for a person to look at (ENTITLE_SCREENSHOTS to choose).
SCREENSHOTS = Path(os.environ.get("ENTITLE_SCREENSHOTS", Path(tempfile.gettempdir()) / "entitle-screenshots"))


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as `<name>.png` under SCREENSHOTS."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies, no session) for each test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def demo_live(transactional_db, live_server, restore_roles):
    """The demo catalogue, loaded by the real command, committed for live_server."""
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    return live_server


@pytest.fixture
def login():
    """Log in through the real admin login form with the demo password."""
    from subscriptions.management.commands.seed_demo import DEMO_PASSWORD

    def _login(page: Page, live_server, username: str) -> None:
        # As a person does: ask for the admin and be sent to its login form. (Opening
        # /admin/login/ without ?next= would land on /accounts/profile/ after login.)
        page.goto(f"{live_server.url}/admin/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/admin/")

    return _login


# --- what a person does on an admin page ---------------------------------------------------


def no_sideways_scroll(page: Page) -> None:
    """At the fixture's 1400 px the page fits its width: nothing to scroll sideways to. (Call it
    once the page a click led to is there: during a navigation there is no document to measure.)"""
    page.wait_for_load_state()
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"


def open_sidebar(page: Page, title: str) -> None:
    # The sidebar link's accessible name starts with its icon's ligature.
    page.get_by_role("link", name=re.compile(rf"\b{re.escape(title)}$")).first.click()


def pick_autocomplete(page: Page, field: str, term: str, choice: str) -> None:
    """Choose `choice` in a select2 box of the form (`field` is the select's id)."""
    page.locator(f"#{field} + .select2 .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(term)
    page.locator(".select2-results__option", has_text=re.compile(rf"^\s*{re.escape(choice)}\s*$")).click()


def save(page: Page, reason: str) -> None:
    """Give the form's reason and press Save, as a person does."""
    page.get_by_label("Reason for this change").fill(reason)
    page.get_by_role("button", name="Save", exact=True).click()
