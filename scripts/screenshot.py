"""Save docs/admin-customer.png: the streamfan customer page as support sees it.

    make screenshot                                   # the README's picture, from scratch
    .venv/bin/python scripts/screenshot.py            # the same
    .venv/bin/python scripts/screenshot.py http://127.0.0.1:8000   # a demo server already up

Without a URL it builds a throwaway demo (a SQLite database, cache and broker folder in a
temporary directory, seeded by `seed_demo`), serves it on a free local port, captures the page
and removes it all: nothing of the running demo or of var/ is touched.
Drives Debian's Chromium (/usr/bin/chromium) through Playwright, as the browser tests do.
"""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
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


@contextmanager
def throwaway_demo():
    """A freshly seeded demo served on a free port; yields its URL, removes everything after."""
    with tempfile.TemporaryDirectory(prefix="entitle-screenshot-") as var_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS"}
        }
        env.update(DJANGO_SETTINGS_MODULE="config.settings.local", ENTITLE_VAR_DIR=var_dir, DEBUG="true")
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        for command in (
            ["migrate", "--verbosity=0"],
            ["seed_demo", "--verbosity=0"],
            ["refresh_feature_usage"],
        ):
            subprocess.run([*manage, *command], env=env, cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{url}/admin/login/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                raise SystemExit("The throwaway demo server did not start.")
            yield url
        finally:
            server.terminate()
            server.wait(timeout=20)


def main(base_url: str | None = None) -> None:
    if base_url is None:
        with throwaway_demo() as url:
            capture(url)
    else:
        capture(base_url)


def capture(base_url: str) -> None:
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
