"""Importing features: a feature's definition is the catalog admins', whoever imports it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from catalog.api.serializers import FeatureOut
from catalog.models import Feature
from tests.audit.imports.conftest import import_text
from tests.audit_trail import history_rows


@pytest.mark.parametrize("apply", [False, True])
def test_feature_import__product_changes_its_features_definition__row_refused_and_nothing_changed(
    demo, apply
):
    product = User.objects.get(username="product")
    before = FeatureOut(Feature.objects.get(key="change-request-version")).data
    rows = history_rows()

    result = import_text(
        "features",
        """
        key,name,kind,status,levels
        change-request-version,Change request version,custom,archived,"v1, v2"
        """,
        user=product,
        apply=apply,
    )

    assert not result.applied
    assert [(row.label, row.reasons) for row in result.refused] == [
        (
            "change-request-version",
            [
                "You may change only the targeting rules of change-request-version; its definition "
                "is for catalog admins."
            ],
        )
    ]
    assert FeatureOut(Feature.objects.get(key="change-request-version")).data == before
    assert history_rows() == rows


def test_feature_import__catalog_admin_changes_the_definition__applied(demo):
    catalog = User.objects.get(username="catalog")

    result = import_text(
        "features",
        """
        key,status
        change-request-version,archived
        """,
        user=catalog,
        apply=True,
    )

    assert result.applied, [row.reasons for row in result.refused]
    assert Feature.objects.get(key="change-request-version").status == "archived"
