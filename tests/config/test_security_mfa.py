"""Staff MFA and the Content-Security-Policy under production settings.

Which admin site every model is registered on is decided while the apps load, so these tests
look at a process started with ``DJANGO_SETTINGS_MODULE=config.settings.production``
(tests/config/production_probe.py), not at this test process, whose settings are the test suite's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra: str) -> dict[str, str]:
    """The environment production reads, with nothing of the test suite's leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ENTITLE_", "PYTEST_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECURE_SSL_REDIRECT", "STATIC_ROOT"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="probe-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="testserver",
        # A database of the probe's own; it creates "test_<name>" and drops it when done.
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/entitle_probe_{os.getpid()}",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    """What a member of staff meets in the admin under production settings (MFA on by default,
    HTTPS redirect on), observed once for the module."""
    work = tmp_path_factory.mktemp("production")
    out = work / "seen.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.config.production_probe", str(out)],
        cwd=ROOT,
        env=production_env(STATIC_ROOT=str(work / "static")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())


def test_admin_site__production_settings__every_model_on_the_mfa_site(production):
    assert production["require_mfa"] is True
    assert production["site_class"] == "config.admin.EntitleAdminSite"
    assert "django_otp.admin.OTPAdminAuthenticationForm" in production["login_form_classes"]
    assert {"auth.User", "catalog.Feature", "subscriptions.Customer", "audit.AuditEntry"} <= set(
        production["registered_models"]
    )


def test_admin_login__password_without_token__refused(production):
    seen = production["password_only"]
    assert seen["fields_shown"] == ["csrfmiddlewaretoken", "otp_token", "password", "username"]
    assert seen["login_status"] == 200  # the form again, not a redirect into the admin
    assert "Enter the code from your authenticator app." in seen["login_page_text"]
    assert seen["users_page_status"] == 302
    assert seen["users_page_redirect"].startswith("/admin/login/")


def test_admin_login__wrong_token__refused(production):
    seen = production["wrong_token"]
    assert seen["login_status"] == 200
    assert "That code is not right or was used already" in seen["login_page_text"]
    assert seen["users_page_status"] == 302
    assert seen["users_page_redirect"].startswith("/admin/login/")


def test_admin_login__right_token__lets_staff_in(production):
    seen = production["right_token"]
    assert seen["login_status"] == 302
    assert seen["login_redirect"] == "/admin/"
    assert seen["users_page_status"] == 200


def test_admin__production_plain_http__redirected_to_https(production):
    assert production["http_login_page"] == {"status": 301, "location": "https://testserver/admin/login/"}


def test_csp__production_settings__admin_and_docs_send_the_policy(production):
    for path in ("/admin/login/", "/api/docs/"):
        policy = production["csp"][path]["csp"]
        assert production["csp"][path]["status"] == 200
        assert policy, f"no Content-Security-Policy on {path}"
        assert "default-src 'self'" in policy
        assert "object-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
    # The JSON API is read by programs: no policy built for it.
    assert production["csp"]["/api/v1/features/"]["csp"] is None


def test_admin_site__unfold_default_app_config__refuses_to_start():
    """Put back unfold's default app config (which swaps in a site without MFA): the project
    must not start rather than run with a password-only admin."""
    code = (
        "import config.settings.production as s\n"
        "s.INSTALLED_APPS = ['unfold' if a.startswith('unfold.apps.') else a for a in s.INSTALLED_APPS]\n"
        "import django\n"
        "django.setup()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "ImproperlyConfigured" in run.stderr
    assert 'install unfold as "unfold.apps.BasicAppConfig"' in run.stderr
