"""Exporting anything and importing the file back changes nothing and records nothing: every
column reads back as the value it was written from, in CSV and in XLSX."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.imports.files import KINDS
from tests.audit.imports.conftest import CSV, XLSX, export_bytes, import_bytes
from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("file_format", [CSV, XLSX], ids=["csv", "xlsx"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip__export_then_import__changes_and_records_nothing(demo, kind, file_format):
    admin = User.objects.get(username="admin")
    data = export_bytes(kind, file_format)
    before = history_rows()

    result = import_bytes(kind, data, user=admin, apply=True, file_format=file_format)

    assert result.problems == [] and result.refused == []
    assert result.counts["unchanged"] > 0
    assert result.changes == []
    assert history_rows() == before


def test_round_trip__through_the_admin__offers_nothing_to_confirm(client, demo):
    client.force_login(User.objects.get(username="support"))
    exported = client.post(
        reverse("admin:subscriptions_override_export"),
        {"resource": "0", "format": "0", **{f"overrideresource_{c}": "on" for c in _override_columns()}},
    )
    before = history_rows()

    preview = client.post(
        reverse("admin:subscriptions_override_import"),
        {
            "resource": "0",
            "format": "0",
            "import_file": SimpleUploadedFile("overrides.csv", exported.content),
        },
    )

    text = preview.content.decode()
    assert "0 created, 0 changed, 0 removed, 2 unchanged, 0 refused" in text
    assert 'id="import-confirm"' not in text
    assert "Nothing to change: every row already matches." in text
    assert history_rows() == before


def _override_columns() -> list[str]:
    from subscriptions.resources import OverrideResource

    return OverrideResource.export_columns()
