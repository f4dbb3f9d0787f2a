"""The admin site's own pieces (config/admin.py) that every changelist shares."""

from __future__ import annotations

import re
from unittest.mock import patch

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse
from unfold.templatetags import unfold_list

from tests import factories as f

pytestmark = pytest.mark.django_db


def test_changelist__many_rows__column_headers_built_once_per_page(client, superuser, audited):
    """unfold builds the headers again for every row unless config.admin makes it build them
    once: with 30 rows and 9 columns that was 30 × 10 labels looked up, and as many select-all
    checkboxes rendered, per page."""
    feature = f.FeatureFactory()
    for n in range(30):
        f.OverrideFactory(feature=feature, subscription=f.SubscriptionFactory(external_id=f"sub-{n}"))
    url = reverse("admin:subscriptions_override_changelist")
    client.get(url)
    looked_up = []
    label_for_field = unfold_list.label_for_field

    def counting(*args, **kwargs):
        looked_up.append(args[0])
        return label_for_field(*args, **kwargs)

    with patch.object(unfold_list, "label_for_field", counting):
        response = client.get(url)

    assert len(response.context["cl"].result_list) == 30
    columns = len(response.context["cl"].list_display)
    assert len(looked_up) == columns
    assert response.content.decode().count('data-label="subscription"') == 30  # each row labels its cells


# --- the shell every admin page shares ----------------------------------------------------------


def test_sidebar__entitlements_and_scheduled_changes__linked(client, superuser):
    response = client.get(reverse("admin:index"))

    page = response.content.decode()
    assert f'href="{reverse("admin:catalog_entitlement_changelist")}"' in page
    assert f'href="{reverse("admin:audit_scheduledchange_changelist")}"' in page


def test_favicon__linked_from_every_page__served(client, superuser):
    page = client.get(reverse("admin:subscriptions_customer_changelist")).content.decode()

    icon = re.search(r'<link rel="icon"[^>]*href="([^"]+)"', page)
    assert icon, "no favicon link"
    # A static file (collectstatic gathers it; the browser journey asks a live server for it).
    assert icon.group(1) == static("entitle/favicon.svg") and finders.find("entitle/favicon.svg")
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == icon.group(1)


def test_view_site__no_public_site__link_hidden_and_root_leads_to_the_admin(client, superuser):
    page = client.get(reverse("admin:index")).content.decode()

    assert "View site" not in page
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")


def test_breadcrumb__object_with_a_lowercase_key__shown_as_written(client, superuser):
    subscription = f.SubscriptionFactory(external_id="sub-streamfan")

    page = client.get(
        reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    ).content.decode()

    assert "sub-streamfan" in page
    assert "Sub-streamfan" not in page


def test_dates__change_form_read_only_time__one_format_with_utc(client, superuser):
    from datetime import UTC, datetime

    from audit.models import ScheduledChange
    from toolkit.change_context import change_context

    with change_context(actor=superuser, reason="Test", source="shell"):
        change = ScheduledChange.objects.create(
            method="PATCH",
            path="/api/v1/items/starter",
            body={"name": "Starter"},
            effective_at=datetime(2026, 12, 26, 23, 0, tzinfo=UTC),
            reason="Test",
            created_by=superuser,
        )

    page = client.get(reverse("admin:audit_scheduledchange_change", args=[change.pk])).content.decode()

    assert "2026-12-26 23:00 UTC" in page
    assert "Dec. 26, 2026" not in page
