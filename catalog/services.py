"""Writes to the catalog. Each checks the actor's permission, validates, saves inside a
change context (so history records who and why) and moves the catalog revision."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction

from audit.context import change_context
from audit.history import has_unsaved_changes
from audit.writes import delete_audited, save_audited
from catalog import permissions, revisions
from catalog.models import Entitlement, Feature, Item, Tag

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def feature_save(
    *,
    feature: Feature,
    tags: Iterable[Tag] | None = None,
    actor: User | None,
    reason: str,
    source: str,
) -> Feature:
    """Create or change a feature (its key never changes), and set its tags when given. A
    change to the definition needs the catalog's own permission; an unchanged feature needs
    only the permission to edit its targeting rules (the page of its rules saves it too)."""
    retag = tags is not None and (feature.pk is None or set(tags) != set(feature.tags.all()))
    if feature.pk is None:
        permissions.require_add_feature(actor)
    elif retag or has_unsaved_changes(feature):
        permissions.require_change_feature_definition(actor, feature)
    else:
        permissions.require_change_feature_rules(actor, feature)
    save_audited(feature, actor=actor, reason=reason, source=source)
    if retag and set(tags) != set(feature.tags.all()):
        permissions.require_retag(actor)
        with change_context(actor=actor, reason=reason, source=source):
            feature.tags.set(tags)
        permissions.sync_feature_permissions(feature, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return feature


@transaction.atomic
def item_save(*, item: Item, actor: User | None, reason: str, source: str) -> Item:
    """Create or change a plan, add-on or charge."""
    permissions.require_catalog_perm(actor, "add" if item.pk is None else "change", "item")
    save_audited(item, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return item


@transaction.atomic
def item_supersede(
    *, item: Item, new_key: str, new_name: str = "", actor: User | None, reason: str, source: str
) -> Item:
    """Copy a plan with its entitlements to `new_key` and mark the old plan legacy, so its
    subscribers keep exactly what they have while new ones get the successor. Without a new
    name the successor is called "<old name> (<new key>)": two plans of one name could not be
    told apart in a list or a select box."""
    permissions.require_catalog_perm(actor, "add", "item")
    permissions.require_catalog_perm(actor, "change", "item")
    item = Item.objects.select_for_update().get(pk=item.pk)
    if item.kind != Item.Kind.PLAN:
        raise ValidationError(f"Only plans can be superseded; {item.key} is a {item.kind}.")
    if item.status != Item.Status.ACTIVE:
        raise ValidationError(f"{item.key} is {item.status}: only an active plan can be superseded.")
    if Item.objects.filter(key=new_key).exists():
        raise ValidationError({"new_key": f"An item with the key {new_key} already exists."})
    successor = Item(
        key=new_key,
        kind=item.kind,
        name=(new_name or "").strip() or f"{item.name} ({new_key})",
        rank=item.rank,
        grace_days=item.grace_days,
        status=Item.Status.ACTIVE,
    )
    save_audited(successor, actor=actor, reason=reason, source=source)
    for entitlement in item.entitlements.select_related("feature"):
        copy = Entitlement(item=successor, feature=entitlement.feature, value=entitlement.value)
        save_audited(copy, actor=actor, reason=reason, source=source)
    item.status = Item.Status.LEGACY
    item.superseded_by = successor
    save_audited(item, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return successor


@transaction.atomic
def entitlement_set(
    *, item: Item, feature: Feature, value: object, actor: User | None, reason: str, source: str
) -> Entitlement:
    """Give `item` this level of `feature` (replacing any level it had); applies at once to
    every subscription on the item."""
    entitlement = Entitlement.objects.filter(item=item, feature=feature).first()
    permissions.require_catalog_perm(actor, "change" if entitlement else "add", "entitlement")
    if entitlement is None:
        entitlement = Entitlement(item=item, feature=feature)
    entitlement.value = value
    save_audited(entitlement, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return entitlement


@transaction.atomic
def entitlement_save(
    *, entitlement: Entitlement, actor: User | None, reason: str, source: str
) -> Entitlement:
    """Save an entitlement edited as a whole (the admin's inline)."""
    permissions.require_catalog_perm(actor, "add" if entitlement.pk is None else "change", "entitlement")
    save_audited(entitlement, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return entitlement


@transaction.atomic
def entitlement_remove(*, entitlement: Entitlement, actor: User | None, reason: str, source: str) -> None:
    """Take a feature out of an item."""
    permissions.require_catalog_perm(actor, "delete", "entitlement")
    delete_audited(entitlement, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()


@transaction.atomic
def tag_save(
    *, tag: Tag, groups: Iterable[Group] | None = None, actor: User | None, reason: str, source: str
) -> Tag:
    """Create or change a tag and the groups it empowers."""
    permissions.require_catalog_perm(actor, "add" if tag.pk is None else "change", "tag")
    save_audited(tag, actor=actor, reason=reason, source=source)
    if groups is not None and set(groups) != set(tag.groups.all()):
        with change_context(actor=actor, reason=reason, source=source):
            tag.groups.set(groups)
        from segments.permissions import sync_segment_permissions

        for feature in tag.features.all():
            permissions.sync_feature_permissions(feature, actor=actor, reason=reason, source=source)
        for segment in tag.segments.all():
            sync_segment_permissions(segment, actor=actor, reason=reason, source=source)
    return tag


@transaction.atomic
def object_permission_save(
    *, row: models.Model, actor: User | None, reason: str, source: str
) -> models.Model:
    """A one-off grant of one object permission to one user or group (a guardian row)."""
    _require_permission_admin(actor, "add", row)
    save_audited(row, actor=actor, reason=reason, source=source)
    return row


@transaction.atomic
def object_permission_delete(*, row: models.Model, actor: User | None, reason: str, source: str) -> None:
    """Withdraw a one-off grant (or a tag-derived one, until the tags are saved again)."""
    _require_permission_admin(actor, "delete", row)
    delete_audited(row, actor=actor, reason=reason, source=source)


def _require_permission_admin(actor: User | None, action: str, row: models.Model) -> None:
    meta = type(row)._meta
    if not permissions.has(actor, f"{meta.app_label}.{action}_{meta.model_name}"):
        raise PermissionDenied(f"You may not hand out {meta.verbose_name_plural}.")
