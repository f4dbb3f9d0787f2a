"""Writes to the catalog. Each checks the actor's permission, validates, saves inside a
change context (so history records who and why) and moves the catalog revision.

The `*_put` services are the API's create-or-replace writes: they read and lock the row by
its key (`toolkit.upsert`), and a write that changes nothing records nothing and needs only
the permission to change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models

from audit.history import has_unsaved_changes
from audit.writes import atomic, delete_audited, save_audited
from catalog import permissions
from catalog.models import Entitlement, Feature, Item, Tag
from toolkit import revisions
from toolkit.change_context import change_context
from toolkit.upsert import assign, find, is_noop, locked, put

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@atomic
def feature_put(
    *,
    key: str,
    values: dict[str, Any],
    tags: list[Tag] | None,
    partial: bool,
    actor: User | None,
    reason: str,
    source: str,
) -> tuple[Feature, bool]:
    """Create the feature `key` or set `values` (and, when given, its tags) on it. Returns it
    and whether it was created."""
    feature, before = locked(Feature.objects, partial=partial, missing=f"No feature {key}.", key=key)
    created = feature is None
    feature = feature or Feature(key=key)
    if tags is not None and not created and {t.pk for t in tags} == {t.pk for t in feature.tags.all()}:
        tags = None  # the same tags: setting them again would be a no-op write
    assign(feature, values)
    if tags is None and is_noop(feature, before):
        permissions.require_change_feature_rules(actor, feature)
    else:
        feature_save(feature=feature, tags=tags, actor=actor, reason=reason, source=source)
    return feature, created


@atomic
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
    elif has_unsaved_changes(feature):
        permissions.require_change_feature_definition(actor, feature)
    elif not retag:
        permissions.require_change_feature_rules(actor, feature)
    if retag and (feature.pk is not None or tags):
        permissions.require_retag(actor)
    save_audited(feature, actor=actor, reason=reason, source=source)
    if retag and set(tags) != set(feature.tags.all()):
        with change_context(actor=actor, reason=reason, source=source):
            feature.tags.set(tags)
        permissions.sync_feature_permissions(feature, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return feature


@atomic
def item_save(*, item: Item, actor: User | None, reason: str, source: str) -> Item:
    """Create or change a plan, add-on or charge."""
    permissions.require_catalog_perm(actor, "add" if item.pk is None else "change", "item")
    save_audited(item, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return item


@atomic
def item_put(
    *, key: str, values: dict[str, Any], partial: bool, actor: User | None, reason: str, source: str
) -> tuple[Item, bool]:
    """Create the plan, add-on or charge `key` or set `values` on it. Returns it and whether
    it was created."""
    return put(
        Item.objects,
        lookup={"key": key},
        values=values,
        partial=partial,
        missing=f"No item {key}.",
        save=lambda item: item_save(item=item, actor=actor, reason=reason, source=source),
        unchanged=lambda item: permissions.require_catalog_perm(actor, "change", "item"),
    )


@atomic
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


@atomic
def entitlement_put(
    *, item_key: str, feature_key: str, value: object, actor: User | None, reason: str, source: str
) -> tuple[Entitlement, bool]:
    """Give the item `item_key` this level of the feature `feature_key`, replacing any level
    it had. Returns the entitlement and whether it was created."""
    item = find(Item.objects, key=item_key, missing=f"No item {item_key}.")
    feature = find(Feature.objects, key=feature_key, missing=f"No feature {feature_key}.")
    who = {"actor": actor, "reason": reason, "source": source}
    # The item and the feature are the rows just read: the entitlement names them without a query.
    return put(
        Entitlement.objects,
        lookup={"item_id": item.pk, "feature_id": feature.pk},
        values={"item": item, "feature": feature, "value": value},
        partial=False,
        missing="",
        save=lambda entitlement: entitlement_save(entitlement=entitlement, **who),
        unchanged=lambda entitlement: permissions.require_catalog_perm(actor, "change", "entitlement"),
    )


@atomic
def entitlement_save(
    *, entitlement: Entitlement, actor: User | None, reason: str, source: str
) -> Entitlement:
    """Save an entitlement edited as a whole (the admin's inline)."""
    permissions.require_catalog_perm(actor, "add" if entitlement.pk is None else "change", "entitlement")
    save_audited(entitlement, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return entitlement


@atomic
def entitlement_remove(*, entitlement: Entitlement, actor: User | None, reason: str, source: str) -> None:
    """Take a feature out of an item."""
    permissions.require_catalog_perm(actor, "delete", "entitlement")
    delete_audited(entitlement, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()


@atomic
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


@atomic
def object_permission_save(
    *, row: models.Model, actor: User | None, reason: str, source: str
) -> models.Model:
    """A one-off grant of one object permission to one user or group (a guardian row)."""
    _require_permission_admin(actor, "add", row)
    save_audited(row, actor=actor, reason=reason, source=source)
    return row


@atomic
def object_permission_delete(*, row: models.Model, actor: User | None, reason: str, source: str) -> None:
    """Withdraw a one-off grant (or a tag-derived one, until the tags are saved again)."""
    _require_permission_admin(actor, "delete", row)
    delete_audited(row, actor=actor, reason=reason, source=source)


def _require_permission_admin(actor: User | None, action: str, row: models.Model) -> None:
    meta = type(row)._meta
    if not permissions.has(actor, f"{meta.app_label}.{action}_{meta.model_name}"):
        raise PermissionDenied(f"You may not hand out {meta.verbose_name_plural}.")
