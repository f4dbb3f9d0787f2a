"""The admin site's own pieces (config/admin.py) that every changelist shares."""

from __future__ import annotations

from unittest.mock import patch

import pytest
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
