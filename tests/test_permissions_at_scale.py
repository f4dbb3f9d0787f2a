"""Object permissions at scale: the feature and segment changelists stay at a pinned query
count with 10k objects each carrying an object permission (no per-row checks)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.urls import reverse

from toolkit.change_context import change_context


def _bulk_rows(table_sql: str) -> None:
    """Test data straight into the tables: 10k rows in one statement (no history needed for
    what the test reads)."""
    with connection.cursor() as cursor:
        cursor.execute(table_sql)


@pytest.fixture
def product_user(db):
    user = User.objects.create_user("pm", is_staff=True)
    with change_context(actor=None, reason="Test data: roles", source="shell"):
        user.groups.add(Group.objects.get(name="Product"))
    return user


@pytest.mark.django_db
def test_feature_changelist__10k_features_with_object_permissions__pinned_queries(
    client, product_user, django_assert_max_num_queries
):
    _bulk_rows("""
        INSERT INTO catalog_feature (key, name, description, kind, levels, allow_unlimited, markets,
                                     keep_when_delinquent, fallback, status, period, period_anchor,
                                     limit_type)
        SELECT 'f-' || n, 'Feature ' || n, '', 'switch', '[]', false, '', false, 'deny', 'active', '', '', ''
        FROM generate_series(1, 10000) AS n""")
    change = Permission.objects.get(codename="change_feature")
    _bulk_rows(f"""
        INSERT INTO catalog_featuregrouppermission (group_id, permission_id, content_object_id, via_tags)
        SELECT {Group.objects.get(name="Product").pk}, {change.pk}, id, true FROM catalog_feature""")
    client.force_login(product_user)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:catalog_feature_changelist"))
    assert response.status_code == 200
    assert "f-1</a>" in response.content.decode() or "f-1" in response.content.decode()


@pytest.mark.django_db
def test_segment_changelist__10k_segments_with_object_permissions__pinned_queries(
    client, product_user, django_assert_max_num_queries
):
    _bulk_rows("""
        INSERT INTO segments_segment (key, name, description)
        SELECT 's-' || n, 'Segment ' || n, '' FROM generate_series(1, 10000) AS n""")
    change = Permission.objects.get(codename="change_segment")
    _bulk_rows(f"""
        INSERT INTO segments_segmentgrouppermission (group_id, permission_id, content_object_id, via_tags)
        SELECT {Group.objects.get(name="Product").pk}, {change.pk}, id, true FROM segments_segment""")
    client.force_login(product_user)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:segments_segment_changelist"))
    assert response.status_code == 200
    assert "Segment 1" in response.content.decode()
