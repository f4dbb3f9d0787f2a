"""Who holds which role decides what they may change: joining or leaving a role is recorded
in the audit log with who, when and why, from either side of the relation, or refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEntry
from tests.formdata import form_data
from toolkit.change_context import ChangeReasonRequired, change_context

pytestmark = pytest.mark.django_db


def role_entries(user: User) -> list[tuple[str, list, list, str]]:
    return [
        (entry.reason, entry.changes[0]["old"], entry.changes[0]["new"], entry.source)
        for entry in AuditEntry.objects.filter(content_type__model="user", object_id=str(user.pk)).order_by(
            "id"
        )
    ]


def test_role_membership__changed_without_a_reason__is_refused():
    user = User.objects.create_user("newcomer", is_staff=True)

    with pytest.raises(ChangeReasonRequired), transaction.atomic():
        user.groups.add(Group.objects.get(name="Sales"))
    with pytest.raises(ChangeReasonRequired), transaction.atomic():
        Group.objects.get(name="Support").user_set.add(user)

    assert not user.groups.exists()
    assert role_entries(user) == []


def test_role_membership__joined_and_left__recorded_on_the_user_old_to_new():
    boss = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    user = User.objects.create_user("newcomer", is_staff=True)
    sales, support = Group.objects.get(name="Sales"), Group.objects.get(name="Support")

    with change_context(actor=boss, reason="Joins the sales team, HR-12", source="shell"):
        user.groups.add(sales)
    with change_context(actor=boss, reason="Also covers support", source="admin"):
        support.user_set.add(user)
    with change_context(actor=boss, reason="Leaves sales", source="admin"):
        sales.user_set.remove(user)

    assert role_entries(user) == [
        ("Joins the sales team, HR-12", [], ["Sales"], "shell"),
        ("Also covers support", ["Sales"], ["Sales", "Support"], "admin"),
        ("Leaves sales", ["Sales", "Support"], ["Support"], "admin"),
    ]
    assert set(AuditEntry.objects.filter(content_type__model="user").values_list("user", flat=True)) == {
        boss.pk
    }


def test_role_membership__unchanged__records_nothing():
    user = User.objects.create_user("newcomer", is_staff=True)
    sales = Group.objects.get(name="Sales")
    with change_context(actor=None, reason="Joins sales", source="shell"):
        user.groups.add(sales)

    with change_context(actor=None, reason="Again", source="shell"):
        user.groups.add(sales)

    assert [reason for reason, *_ in role_entries(user)] == ["Joins sales"]


def test_staff_account__roles_and_flags_changed_in_the_admin__recorded_with_the_reason(client):
    boss = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    user = User.objects.create_user("newcomer", is_staff=True)
    sales = Group.objects.get(name="Sales")
    client.force_login(boss)
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = client.get(url)
    data = {**form_data(page.content.decode(), "user_form"), "groups": [str(sales.pk)], "is_superuser": "on"}

    refused = client.post(url, {**data, "change_reason": " "})
    saved = client.post(url, {**data, "change_reason": "Promoted, see https://hr.example/42"})

    assert refused.status_code == 200
    assert list(refused.context["adminform"].form.errors) == ["change_reason"]
    assert saved.status_code == 302
    user.refresh_from_db()
    assert list(user.groups.all()) == [sales] and user.is_superuser
    entries = AuditEntry.objects.filter(content_type__model="user", object_id=str(user.pk)).order_by("id")
    assert [(e.user, e.source, e.reason, e.changes) for e in entries] == [
        (
            boss,
            "admin",
            "Promoted, see https://hr.example/42",
            [{"field": "is_superuser", "old": False, "new": True}],
        ),
        (
            boss,
            "admin",
            "Promoted, see https://hr.example/42",
            [{"field": "roles", "old": [], "new": ["Sales"]}],
        ),
    ]


def test_role__permissions_changed_in_the_admin__recorded_with_the_reason_or_refused(client):
    boss = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    support = Group.objects.get(name="Support")
    before = sorted(f"{p.content_type.app_label}.{p.codename}" for p in support.permissions.all())
    extra = Permission.objects.get(codename="change_customer")
    client.force_login(boss)
    url = reverse("admin:auth_group_change", args=[support.pk])
    data = {
        "name": "Support",
        "permissions": [str(p.pk) for p in support.permissions.all()] + [str(extra.pk)],
    }

    refused = client.post(url, {**data, "change_reason": ""})
    saved = client.post(url, {**data, "change_reason": "Support edits customers from now on, OPS-9"})

    assert refused.status_code == 200 and saved.status_code == 302
    entry = AuditEntry.objects.get(content_type__model="group", object_id=str(support.pk))
    assert (entry.user, entry.reason) == (boss, "Support edits customers from now on, OPS-9")
    assert entry.changes == [
        {"field": "permissions", "old": before, "new": sorted([*before, "subscriptions.change_customer"])}
    ]


@pytest.mark.parametrize("url_name", ["admin:auth_group_delete", "admin:auth_user_delete"])
def test_role_or_account__delete_page__refused_to_a_superuser_too(client, url_name):
    boss = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    target = Group.objects.get(name="Sales") if "group" in url_name else User.objects.create_user("leaver")
    client.force_login(boss)

    response = client.post(reverse(url_name, args=[target.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert type(target).objects.filter(pk=target.pk).exists()
