"""Audit-log entries for changes to things that keep no history table of their own: who is
in which role (a user's groups decide what they may change) and API keys (a key acts as its
owner). Each entry comes from the change context in force, so it has who, when, from where
and why like every other entry; outside a context the change is refused.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from audit.history import require_context
from audit.models import AuditEntry

# Models without a history table whose changes the audit log lists (its model filter offers
# them): staff accounts here; other apps add theirs when they load (`also_recorded`).
RECORDED_MODELS: set[type[models.Model]] = {User, Group}


def also_recorded(model: type[models.Model]) -> None:
    """Offer `model`'s entries in the audit log's model filter (its writes call record_change)."""
    RECORDED_MODELS.add(model)


def record_change(
    obj: models.Model, *, action: str, changes: list[dict[str, Any]], object_id: str | None = None
) -> AuditEntry:
    """One audit-log entry for `obj` (action "+", "~" or "-"), as the change context says.
    `object_id` names the object in the log when its primary key should not be shown."""
    context = require_context(obj)
    return AuditEntry.objects.create(
        history_date=timezone.now(),
        user=context.actor,
        source=context.source,
        request_id=context.request_id,
        reason=context.reason,
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=object_id if object_id is not None else str(obj.pk),
        object_repr=str(obj)[:200],
        action=action,
        changes=changes,
        history_id=None,
    )


def _roles_of(user_ids: set[int] | None, instance: models.Model) -> dict[int, list[str]]:
    """Each user's roles, by name, as they are now (one query)."""
    ids = user_ids if user_ids is not None else {instance.pk}
    roles: dict[int, list[str]] = {pk: [] for pk in ids}
    for user_id, name in (
        User.groups.through.objects.filter(user_id__in=ids)
        .order_by("group__name")
        .values_list("user_id", "group__name")
    ):
        roles[user_id].append(name)
    return roles


def role_membership_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Record who joined or left a role: on each user whose roles changed, old → new.

    Connected to `User.groups`' m2m_changed, both ways (`user.groups.add(role)` and
    `role.user_set.add(user)`)."""
    if action.startswith("pre_"):
        require_context(instance)
        if reverse:  # instance is the group: the users concerned are in pk_set, or all its members
            user_ids = (
                set(pk_set) if pk_set is not None else set(instance.user_set.values_list("pk", flat=True))
            )
        else:
            user_ids = {instance.pk}
        instance._roles_before = _roles_of(user_ids, instance)
        return
    if not action.startswith("post_"):
        return
    before: dict[int, list[str]] = getattr(instance, "_roles_before", {})
    after = _roles_of(set(before), instance)
    users = {
        user.pk: user for user in User.objects.filter(pk__in=[pk for pk in before if before[pk] != after[pk]])
    }
    for pk, user in sorted(users.items()):
        record_change(user, action="~", changes=[{"field": "roles", "old": before[pk], "new": after[pk]}])
    del instance._roles_before


def watch_role_memberships() -> None:
    """Record every change of who holds which role (called once, when the app is ready)."""
    models.signals.m2m_changed.connect(
        role_membership_changed, sender=User.groups.through, dispatch_uid="audit-role-memberships"
    )
