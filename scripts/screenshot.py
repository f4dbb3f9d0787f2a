"""Save docs/admin-customer.png: the streamfan customer page as support sees it.

Run against a demo server that is already up (migrated and seeded with `seed_demo`):

    .venv/bin/python scripts/screenshot.py [http://127.0.0.1:8000]

Drives Debian's Chromium (/usr/bin/chromium) through Playwright, as the browser tests do.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE_DIR = Path(__file__).resolve().parent.parent
SEED_DEMO = BASE_DIR / "subscriptions" / "management" / "commands" / "seed_demo.py"
OUTPUT = BASE_DIR / "docs" / "admin-customer.png"
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
USERNAME = "support"
CUSTOMER = "streamfan"


def demo_password() -> str:
    """DEMO_PASSWORD as seed_demo defines it, read without setting Django up."""
    for node in ast.parse(SEED_DEMO.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DEMO_PASSWORD" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit(f"No DEMO_PASSWORD in {SEED_DEMO}")


def main(base_url: str = "http://127.0.0.1:8000") -> None:
    base_url = base_url.rstrip("/")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(10_000)
            page = context.new_page()
            page.goto(f"{base_url}/admin/login/?next=/admin/")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(demo_password())
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base_url}/admin/")
            page.goto(f"{base_url}/admin/subscriptions/customer/?q={CUSTOMER}")
            page.get_by_role("link", name=CUSTOMER, exact=True).click()
            page.get_by_test_id("resolved-entitlements").first.wait_for()
            page.wait_for_load_state("networkidle")
            # The form's button bar is sticky at the viewport's bottom; a full-page capture would
            # freeze it mid-page over the content, so it sits where the form ends for the picture.
            page.add_style_tag(content="#submit-row { position: static !important; }")
            page.screenshot(path=str(OUTPUT), full_page=True)
        finally:
            browser.close()
    print(f"Saved {OUTPUT.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
