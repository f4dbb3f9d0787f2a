"""`manage.py bulk_import` and `bulk_export`: the admin's import and export for scripts, as a
given user, with a reason, or as a dry run."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEntry
from catalog.models import Entitlement
from tests.audit.imports.conftest import REASON

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("item,feature,value\nbusiness,max-members,50\nstarter,max-members,5\n")
    return str(path)


def test_bulk_import__dry_run__prints_the_changes_and_writes_nothing(demo, prices):
    out = run("bulk_import", "entitlements", prices, "--user", "catalog", "--dry-run")

    assert "line 2: change business / max-members: value: 25 → 50" in out
    assert "Dry run, nothing written: 0 created, 1 changed, 0 removed, 1 unchanged, 0 refused." in out
    assert Entitlement.objects.get(item__key="business", feature__key="max-members").value == 25


def test_bulk_import__with_a_reason__applies_as_the_user(demo, prices):
    out = run("bulk_import", "entitlements", prices, "--user", "catalog", "--reason", REASON)

    assert "Imported: 0 created, 1 changed" in out
    entry = AuditEntry.objects.get(reason=REASON)
    assert (entry.user.username, entry.source, entry.object_repr) == (
        "catalog",
        "import",
        "business → max-members",
    )
    assert str(entry.request_id) in out


def test_bulk_import__a_refused_row__fails_and_applies_nothing(demo, tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text(
        "subscription,feature,valid_from,effect,value\n"
        "sub-streamfan,4k-streaming,2030-06-06,grant,true\n"
        "sub-acme,max-members,2030-06-06,grant,50\n"
    )

    with pytest.raises(CommandError, match=r"Nothing was imported: 1 created, .* 1 refused"):
        out = StringIO()
        call_command(
            "bulk_import", "overrides", str(path), "--user", "support", "--reason", REASON, stdout=out
        )
    assert (
        "line 3: refused sub-acme / max-members / 2030-06-06: You may not grant or revoke max-members."
        in (out.getvalue())
    )
    assert not AuditEntry.objects.filter(reason=REASON).exists()


def test_bulk_import__without_a_reason_or_a_known_user__is_refused(demo, prices):
    with pytest.raises(CommandError, match="Give --reason, or --dry-run"):
        run("bulk_import", "entitlements", prices, "--user", "catalog")
    with pytest.raises(CommandError, match="No active user nobody"):
        run("bulk_import", "entitlements", prices, "--user", "nobody", "--dry-run")


def test_bulk_export_then_bulk_import__xlsx__changes_nothing(demo, tmp_path):
    path = str(tmp_path / "subscriptions.xlsx")
    run("bulk_export", "subscriptions", "--output", path)
    entries = AuditEntry.objects.count()

    out = run("bulk_import", "subscriptions", path, "--user", "sales", "--reason", REASON)

    assert "Imported: 0 created, 0 changed, 0 removed, 14 unchanged, 0 refused" in out
    assert AuditEntry.objects.count() == entries


def test_bulk_export__csv_to_stdout__has_the_import_columns(demo):
    out = run("bulk_export", "entitlements")

    assert out.splitlines()[0] == "item,feature,value"
    assert "enterprise,max-members,unlimited" in out.splitlines()
