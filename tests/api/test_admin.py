"""API keys in the admin: created with the key shown once, revoked and expired from the
list and from the key's page (asking why first), and refused by the API at once."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from api import services
from api.models import APIKey
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(demo):
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    return client


@pytest.fixture
def key_of_sales(db):
    return services.api_key_create(
        name="billing",
        owner=User.objects.get(username="sales"),
        scope="write",
        actor=None,
        reason="Billing sync needs to write subscriptions",
        source="shell",
    )


def test_add__the_key_is_shown_once_and_works(admin_client, django_capture_on_commit_callbacks):
    sales = User.objects.get(username="sales")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:api_apikey_add"),
            {
                "name": "billing",
                "owner": sales.pk,
                "scope": "read",
                "expiry_date_0": "",
                "expiry_date_1": "",
                "change_reason": "OPS-7: billing reads entitlements",
            },
            follow=True,
        )

    assert response.status_code == 200
    shown = re.search(r"The key for billing is: (\S+) —", response.content.decode())
    assert shown is not None
    raw_key = shown.group(1)
    api_key = APIKey.objects.get(name="billing")
    assert (api_key.owner, api_key.scope, raw_key.split(".")[0]) == (sales, "read", api_key.prefix)
    assert (
        raw_key
        not in admin_client.get(reverse("admin:api_apikey_change", args=[api_key.pk])).content.decode()
    )
    assert Api(Client(), raw_key, django_capture_on_commit_callbacks).get("customers/acme").status_code == 200


def test_list_and_change_pages_render(admin_client, key_of_sales):
    api_key, _ = key_of_sales

    assert admin_client.get(reverse("admin:api_apikey_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:api_apikey_change", args=[api_key.pk])).status_code == 200


@pytest.mark.parametrize(
    ("action", "field"), [("revoke_selected", "revoked"), ("expire_selected", "expiry_date")]
)
def test_bulk_actions__revoke_or_expire__the_api_refuses_the_key(
    admin_client, key_of_sales, django_capture_on_commit_callbacks, action, field
):
    api_key, raw_key = key_of_sales
    client = Api(Client(), raw_key, django_capture_on_commit_callbacks)
    assert client.get("customers/acme").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:api_apikey_changelist"),
            {
                "action": action,
                "_selected_action": [api_key.pk],
                "apply_reason": "1",
                "change_reason": "Leaked in a log",
            },
        )

    api_key.refresh_from_db()
    assert getattr(api_key, field)
    assert client.get("customers/acme").status_code == 401


@pytest.mark.parametrize("url_path", ["revoke", "expire"])
def test_detail_action__asks_on_get__acts_on_post(
    admin_client, key_of_sales, django_capture_on_commit_callbacks, url_path
):
    api_key, raw_key = key_of_sales
    client = Api(Client(), raw_key, django_capture_on_commit_callbacks)
    url = reverse(f"admin:api_apikey_{url_path}_detail", args=[api_key.pk])

    asked = admin_client.get(url)
    assert asked.status_code == 200
    assert client.get("customers/acme").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(url, {"change_reason": "Leaked in a log"})

    assert done.status_code == 302
    assert client.get("customers/acme").status_code == 401


def test_staff_without_key_permissions__no_access(demo):
    client = Client()
    client.force_login(User.objects.get(username="sales"))

    assert client.get(reverse("admin:api_apikey_changelist")).status_code == 403
