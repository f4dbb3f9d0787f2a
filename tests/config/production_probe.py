"""Visits the admin under production settings and writes down what a person would see.

Run by tests/config/test_security_mfa.py in a process of its own,
``DJANGO_SETTINGS_MODULE=config.settings.production python -m tests.config.production_probe OUT.json``,
so that the apps load exactly as they do in production (which admin site every model lands
on is decided while they load). It makes its own PostgreSQL database and collects the static
files (production's manifest storage needs them), logs in through the login form as it is
rendered, and writes its observations as JSON for the test to judge.
"""

from __future__ import annotations

import json
import sys

from tests.formdata import form_data

PASSWORD = "correct horse battery staple 7"
HTTPS = {"X-Forwarded-Proto": "https"}  # as the proxy in front of production says


def log_in(client, username: str, token: str | None) -> dict:
    """Fill the login form as drawn, at once: username, password and, when the form asks for
    it, the code from the authenticator app. Returns what happened."""
    page = client.get("/admin/login/?next=/admin/", headers=HTTPS, secure=True)
    fields = form_data(page.content.decode(), "login-form")
    data = {**fields, "username": username, "password": PASSWORD}
    if token is not None and "otp_token" in fields:
        data["otp_token"] = token
    answer = client.post("/admin/login/?next=/admin/", data, headers=HTTPS | _referer(), secure=True)
    users_page = client.get("/admin/auth/user/", headers=HTTPS, secure=True)
    return {
        "fields_shown": sorted(fields),
        "login_status": answer.status_code,
        "login_redirect": answer.get("Location", ""),
        "login_page_text": answer.content.decode() if answer.status_code == 200 else "",
        "users_page_status": users_page.status_code,
        "users_page_redirect": users_page.get("Location", ""),
    }


def _referer() -> dict:
    # Django checks the Referer of every HTTPS form post against the host.
    return {"Referer": "https://testserver/admin/login/?next=/admin/"}


def observe() -> dict:
    from django.conf import settings
    from django.contrib import admin
    from django.test import Client
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests import factories as f
    from toolkit.change_context import change_context

    seen: dict = {
        "site_class": f"{admin.site.__class__.__module__}.{admin.site.__class__.__qualname__}",
        "registered_models": sorted(m._meta.label for m in admin.site._registry),
        "login_form_classes": [f"{c.__module__}.{c.__qualname__}" for c in admin.site.login_form.__mro__],
        "require_mfa": settings.ENTITLE_REQUIRE_MFA,
        "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    }
    with change_context(actor=None, reason="Production probe: a member of staff.", source="shell"):
        staff = f.SuperuserFactory(username="mfa-staff", password=PASSWORD)
        device = TOTPDevice.objects.create(user=staff, name="Phone", confirmed=True)

    def token_now() -> str:
        return (
            f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"
        )

    plain = Client()
    seen["http_login_page"] = {
        "status": plain.get("/admin/login/").status_code,
        "location": plain.get("/admin/login/").get("Location", ""),
    }
    seen["password_only"] = log_in(Client(enforce_csrf_checks=True), "mfa-staff", token=None)
    right = token_now()
    seen["right_token"] = log_in(Client(enforce_csrf_checks=True), "mfa-staff", token=right)
    # (A wrong token makes django-otp wait before the next try: it comes last.)
    wrong = f"{(int(right) + 1) % 10**device.digits:0{device.digits}d}"
    seen["wrong_token"] = log_in(Client(enforce_csrf_checks=True), "mfa-staff", token=wrong)

    headers = {}
    for path in ("/admin/login/", "/api/docs/", "/api/v1/features/"):
        response = Client().get(path, headers=HTTPS, secure=True)
        headers[path] = {"status": response.status_code, "csp": response.get("Content-Security-Policy")}
    seen["csp"] = headers
    return seen


def main(out_path: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("collectstatic", interactive=False, verbosity=0)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        seen = observe()
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    with open(out_path, "w") as out:
        json.dump(seen, out, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
