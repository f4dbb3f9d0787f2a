"""An import of 10,000 item entitlements previews and applies in a constant number of queries:
the rows' objects are loaded up front, and their writes are recorded in a bulk run and written
together (a preview is the same run, rolled back).

How long it takes is the benchmark's to measure, not these tests'."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from catalog import services
from catalog.models import Entitlement, Feature, Item
from tests.audit.imports.conftest import import_bytes
from toolkit import revisions

pytestmark = pytest.mark.django_db

SETUP = {"actor": None, "reason": "Test setup: a large catalog.", "source": "shell"}


def make_catalog(features: int, items: int, prefix: str = "") -> tuple[list[str], list[str]]:
    """`features` switch features and `items` plans, through the services (a few seconds)."""
    feature_keys = [f"{prefix}feature-{n:03}" for n in range(features)]
    item_keys = [f"{prefix}plan-{n:03}" for n in range(items)]
    for key in feature_keys:
        services.feature_save(feature=Feature(key=key, name=key), **SETUP)
    for rank, key in enumerate(item_keys):
        services.item_save(item=Item(key=key, name=key, rank=rank), **SETUP)
    return feature_keys, item_keys


def entitlements_csv(item_keys: list[str], feature_keys: list[str]) -> bytes:
    rows = ["item,feature,value"] + [
        f"{item},{feature},true" for item in item_keys for feature in feature_keys
    ]
    return "\n".join(rows).encode()


def test_import__10k_entitlements__previews_and_applies(catalog_user, django_capture_on_commit_callbacks):
    feature_keys, item_keys = make_catalog(100, 100)
    data = entitlements_csv(item_keys, feature_keys)

    preview = import_bytes("entitlements", data, user=catalog_user)
    assert preview.is_clean and preview.counts["created"] == 10_000
    assert not Entitlement.objects.filter(item__key__in=item_keys).exists()

    # The test's transaction never commits: run what commit would (cache revision bumps).
    with django_capture_on_commit_callbacks(execute=True):
        result = import_bytes("entitlements", data, user=catalog_user, apply=True)

    assert result.applied and result.counts["created"] == 10_000
    assert Entitlement.objects.filter(item__key__in=item_keys).count() == 10_000
    assert AuditEntry.objects.filter(request_id=result.request_id, source="import").count() == 10_000


def _queries(data: bytes, username: str, *, apply: bool) -> int:
    user = User.objects.get(username=username)  # fresh: no permissions cached from a run before
    with CaptureQueriesContext(connection) as queries:
        result = import_bytes("entitlements", data, user=user, apply=apply)
    assert result.is_clean and (result.applied or not apply)
    return len(queries)


@pytest.mark.parametrize("apply", [False, True], ids=["preview", "apply"])
def test_import__queries__the_same_for_100_and_1000_rows(catalog_user, apply, capsys):
    feature_keys, item_keys = make_catalog(100, 11)
    hundred = entitlements_csv(item_keys[:1], feature_keys)
    thousand = entitlements_csv(item_keys[1:], feature_keys)

    q100 = _queries(hundred, catalog_user.username, apply=apply)
    q1000 = _queries(thousand, catalog_user.username, apply=apply)

    with capsys.disabled():
        print(f"\n{'apply' if apply else 'preview'}: {q100} queries for 100 rows, {q1000} for 1000")
    # Loading the rows' objects, the permissions, then the bulk writes (rows, history rows,
    # audit entries): none of it a row at a time.
    assert q100 == q1000 <= 24


@pytest.mark.parametrize("apply", [False, True], ids=["preview", "apply"])
def test_import_of_many_entitlements__moves_the_catalog_revision_once(
    catalog_user, django_capture_on_commit_callbacks, monkeypatch, apply
):
    feature_keys, item_keys = make_catalog(3, 2, prefix="once-")
    bumped = []
    monkeypatch.setattr("toolkit.revisions.bump", bumped.append)

    with django_capture_on_commit_callbacks(execute=True):
        result = import_bytes(
            "entitlements", entitlements_csv(item_keys, feature_keys), user=catalog_user, apply=apply
        )

    assert result.is_clean and result.counts["created"] == 6
    assert bumped == ([revisions.CATALOG_KEY] if apply else [])


def test_entitlement_validation__held_rows_not_read_again__a_missing_one_still_refused(catalog_user):
    feature_keys, item_keys = make_catalog(1, 1, prefix="held-")
    item, feature = Item.objects.get(key=item_keys[0]), Feature.objects.get(key=feature_keys[0])

    with CaptureQueriesContext(connection) as queries:
        Entitlement(item=item, feature=feature, value=True).full_clean()
    assert len(queries) == 1  # the unique (item, feature) check only
    with pytest.raises(ValidationError) as refused:
        Entitlement(item_id=10**9, feature=feature, value=True).full_clean()
    assert "item" in refused.value.message_dict
