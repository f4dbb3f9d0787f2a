"""Whether a user holds a feature or segment object permission at all is asked on every admin
page (the sidebar: may the user edit any?). The answer is cached across requests; a grant, a
withdrawal or a group membership moving must still show on the very next request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import FeatureGroupPermission, FeatureUserPermission
from segments.models import SegmentUserPermission
from tests import factories as f
from toolkit.change_context import change_context

pytestmark = pytest.mark.django_db

WHY_ROLES = {"actor": None, "reason": "Test: a role changes hands", "source": "shell"}

FEATURES = reverse("admin:catalog_feature_changelist")
SEGMENTS = reverse("admin:segments_segment_changelist")


@pytest.fixture
def sales(client):
    """A Sales user: views features and segments, holds no object permission on them."""
    user = f.UserFactory(username="sales-rep", groups=["Sales"])
    client.force_login(user)
    return user


@pytest.fixture
def feature(audited):
    return f.FeatureFactory(key="sso")


def title(client, url: str) -> str:
    """The changelist's title: "Select … to change" when the user may edit some of its rows."""
    response = client.get(url)
    assert response.status_code == 200
    return response.context["title"]


def committed(capture, write) -> None:
    """Run `write` as a committed transaction would: with its after-commit callbacks."""
    with capture(execute=True), change_context(actor=None, reason="Test grant", source="shell"):
        write()


def test_feature_permission__granted_then_withdrawn__seen_on_the_next_request(
    client, sales, feature, django_capture_on_commit_callbacks
):
    assert title(client, FEATURES) == "Select feature to view"  # now cached
    change = Permission.objects.get(codename="change_feature")

    committed(
        django_capture_on_commit_callbacks,
        lambda: FeatureUserPermission.objects.create(user=sales, permission=change, content_object=feature),
    )

    assert title(client, FEATURES) == "Select feature to change"

    committed(django_capture_on_commit_callbacks, lambda: FeatureUserPermission.objects.all().delete())

    assert title(client, FEATURES) == "Select feature to view"


def test_group_membership__joined_then_left__seen_on_the_next_request(
    client, sales, feature, django_capture_on_commit_callbacks
):
    editors = Group.objects.create(name="Feature editors")
    committed(
        django_capture_on_commit_callbacks,
        lambda: FeatureGroupPermission.objects.create(
            group=editors,
            permission=Permission.objects.get(codename="change_feature"),
            content_object=feature,
        ),
    )
    assert title(client, FEATURES) == "Select feature to view"

    with django_capture_on_commit_callbacks(execute=True), change_context(**WHY_ROLES):
        sales.groups.add(editors)

    assert title(client, FEATURES) == "Select feature to change"

    with django_capture_on_commit_callbacks(execute=True), change_context(**WHY_ROLES):
        editors.user_set.remove(sales)

    assert title(client, FEATURES) == "Select feature to view"


def test_segment_permission__granted__seen_on_the_next_request(
    client, sales, audited, django_capture_on_commit_callbacks
):
    segment = f.SegmentFactory(key="beta")
    assert title(client, SEGMENTS) == "Select segment to view"

    committed(
        django_capture_on_commit_callbacks,
        lambda: SegmentUserPermission.objects.create(
            user=sales, permission=Permission.objects.get(codename="change_segment"), content_object=segment
        ),
    )

    assert title(client, SEGMENTS) == "Select segment to change"


def test_answer__cached__later_pages_ask_no_object_permission_table(client, sales):
    client.get(FEATURES)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:subscriptions_customer_changelist"))

    assert response.status_code == 200
    tables = (
        "featureuserpermission",
        "featuregrouppermission",
        "segmentuserpermission",
        "segmentgrouppermission",
    )
    assert not [q["sql"] for q in queries if any(table in q["sql"] for table in tables)]
