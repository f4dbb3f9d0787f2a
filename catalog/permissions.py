"""Who may change the catalog and who may grant a feature. The only module, with its twin in
segments/, that speaks to guardian.

A model permission held by a role (Catalog admins hold `catalog.change_feature`) covers every
object; an object permission covers one feature. Tags hand object permissions to their
groups: each group gets, on each tagged object, the object permissions that match what its
role does — `grant_feature` for a group that may create overrides (Sales, Support),
`change_feature` for one that may edit targeting rules (Product), `change_segment` on tagged
segments for one that may edit segment rules. One-off grants to a user or a group sit beside
them and survive tag changes. `None` as the user means a system job, which is trusted.

A feature has two parts with two different keepers:
- its **definition** — name, description, kind, status, levels, bounds, unlimited, markets,
  keep-when-delinquent, fallback and tags — is the catalog's: only the model permission
  `catalog.change_feature` (Catalog admins) may change it (`can_change_feature_definition`);
- its **targeting rules** may be edited by anyone holding `change_feature` on that feature,
  by model permission or by object permission (`can_change_feature_rules`).
So an object permission `change_feature`, from a tag or granted one-off, means "may edit this
feature's targeting rules", never its definition. The services check both, so the admin, the
API, imports and scheduled changes refuse a definition change alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Exists, Q, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save
from guardian.core import ObjectPermissionChecker

from audit.writes import delete_audited, save_audited
from toolkit import revisions

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from catalog.models import Feature

CHANGE_FEATURE = "catalog.change_feature"
GRANT_FEATURE = "catalog.grant_feature"


def checker(user: User) -> ObjectPermissionChecker:
    """One guardian checker per user object, so repeated checks in one request (a change
    page asks several times) cost their queries once."""
    cached = user.__dict__.get("_entitle_checker")
    if cached is None:
        cached = user.__dict__["_entitle_checker"] = ObjectPermissionChecker(user)
    return cached


def prefetch_object_permissions(user: User | None, perm: str, objects: QuerySet) -> None:
    """Load `user`'s object permissions on `objects` in two queries, so that checking each of
    them costs none (guardian's prefetch_perms): an import's rows, for one."""
    if user is not None and not has(user, perm):
        checker(user).prefetch_perms(objects)


def has(user: User | None, perm: str, obj: models.Model | None = None) -> bool:
    """The model permission, or else the object permission on `obj`."""
    if user is None:
        return True
    if not user.is_active:
        return False
    if user.has_perm(perm):
        return True
    return obj is not None and obj.pk is not None and checker(user).has_perm(perm.split(".")[1], obj)


def objects_permitted(
    user: User | None,
    perm: str,
    queryset: QuerySet,
    user_model: type[models.Model],
    group_model: type[models.Model],
) -> QuerySet:
    """`queryset` narrowed to the objects `user` holds `perm` on, by model permission or by
    object permission (as subqueries: no id lists in Python)."""
    if has(user, perm):
        return queryset
    codename = perm.split(".")[1]
    mine = user_model.objects.filter(user=user, permission__codename=codename).values("content_object")
    ours = group_model.objects.filter(
        group__in=user.groups.values("pk"), permission__codename=codename
    ).values("content_object")
    return queryset.filter(Q(pk__in=mine) | Q(pk__in=ours))


# --- "does this user hold `perm` on any object?", asked on every admin page -----------------------
#
# The sidebar asks it for features and for segments on every page a role user opens (whether
# their changelists are editable): four queries a page. The answer is cached per user and perm,
# stamped with a revision of everyone's object permissions, which moves after commit whenever
# a row of an object-permission table is saved or deleted (tags, one-off grants, guardian's
# pages) or a user joins or leaves a group: see `watch_object_permissions`. A stale stamp makes
# the cached answer a miss, so a grant or a withdrawal shows on the next request. Rows written
# around the ORM's signals (raw SQL, bulk_create, QuerySet.update) must call
# `object_permissions_changed()` themselves.

PERMISSIONS_REVISION_KEY = "rev:object-permissions"
HOLDS_ANY_TIMEOUT = 24 * 3600  # answers of a stale revision are never read; this only sweeps them


def object_permissions_changed(**_signal_arguments: object) -> None:
    """Someone's object permissions or group memberships moved: every cached `holds_any`
    answer is stale once this transaction commits (a rolled-back change moves nothing)."""
    transaction.on_commit(lambda: revisions.bump(PERMISSIONS_REVISION_KEY))


def watch_object_permissions(*tables: type[models.Model]) -> None:
    """Move the revision with every write to these object-permission tables (AppConfig.ready)."""
    for table in tables:
        for signal in (post_save, post_delete):
            uid = f"object-permissions-{table._meta.label}"
            signal.connect(object_permissions_changed, sender=table, dispatch_uid=uid)


def _group_membership_changed(action: str, **_signal_arguments: object) -> None:
    if action.startswith("post_"):
        object_permissions_changed()


def watch_group_memberships() -> None:
    """Joining or leaving a group changes which group object permissions a user holds."""
    from django.contrib.auth.models import User

    m2m_changed.connect(_group_membership_changed, sender=User.groups.through, dispatch_uid="perms-groups")


def _holds_any_now(user: User, codename: str, user_model, group_model) -> bool:
    """One query: an object permission of the user's own, or of one of the user's groups."""
    mine = user_model.objects.filter(user=user.pk, permission__codename=codename)
    ours = group_model.objects.filter(group__user=user.pk, permission__codename=codename)
    return get_user_model().objects.filter(pk=user.pk).filter(Exists(mine) | Exists(ours)).exists()


def holds_any(user: User | None, perm: str, user_model, group_model) -> bool:
    """Whether the user holds `perm` on at least one object (to show a changelist as editable).
    Cached across requests until object permissions or group memberships move (above)."""
    if has(user, perm):
        return True
    memo = user.__dict__.setdefault("_entitle_holds_any", {})  # asked several times per page
    if perm not in memo:
        key = f"perm:holds-any:{user.pk}:{perm}"
        found = cache.get_many([PERMISSIONS_REVISION_KEY, key])  # one round trip
        revision = found.get(PERMISSIONS_REVISION_KEY)
        if revision is None:
            revision = revisions.read(PERMISSIONS_REVISION_KEY)[0]
        cached = found.get(key)
        if cached is not None and cached[0] == revision:
            memo[perm] = cached[1]
        else:
            # The revision was read before the database: an answer computed from rows older
            # than a concurrent change is stored under the revision that change moves past.
            memo[perm] = _holds_any_now(user, perm.split(".")[1], user_model, group_model)
            cache.set(key, (revision, memo[perm]), HOLDS_ANY_TIMEOUT)
    return memo[perm]


def group_holds(group: Group, perm: str) -> bool:
    app_label, codename = perm.split(".")
    return group.permissions.filter(content_type__app_label=app_label, codename=codename).exists()


def feature_perms_for_group(group: Group) -> list[str]:
    """The object permissions a tag hands `group` on a tagged feature (module docstring)."""
    perms = []
    if group_holds(group, "subscriptions.add_override"):
        perms.append(GRANT_FEATURE)
    if group_holds(group, "segments.change_targetingrule"):
        perms.append(CHANGE_FEATURE)
    return perms


def sync_tag_permissions(
    obj: models.Model,
    *,
    group_model: type[models.Model],
    perms_for_group: Callable[[Group], list[str]],
    actor: User | None,
    reason: str,
    source: str,
) -> None:
    """Make the tag-derived group permissions on `obj` match its tags now; one-off grants are
    left alone. Each row added or removed is recorded in history with the caller's reason."""
    wanted: set[tuple[int, int]] = set()
    for tag in obj.tags.prefetch_related("groups"):
        for group in tag.groups.all():
            for perm in perms_for_group(group):
                app_label, codename = perm.split(".")
                permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
                wanted.add((group.pk, permission.pk))
    existing = {
        (row.group_id, row.permission_id): row for row in group_model.objects.filter(content_object=obj)
    }
    for key, row in existing.items():
        if row.via_tags and key not in wanted:
            delete_audited(row, actor=actor, reason=reason, source=source)
    for group_id, permission_id in wanted - existing.keys():
        row = group_model(content_object=obj, group_id=group_id, permission_id=permission_id, via_tags=True)
        save_audited(row, actor=actor, reason=reason, source=source)


def sync_feature_permissions(feature: Feature, *, actor: User | None, reason: str, source: str) -> None:
    from catalog.models import FeatureGroupPermission

    sync_tag_permissions(
        feature,
        group_model=FeatureGroupPermission,
        perms_for_group=feature_perms_for_group,
        actor=actor,
        reason=reason,
        source=source,
    )


def require_retag(user: User | None) -> None:
    """Tags decide who may edit what, so only those who edit tags (Catalog admins) may move
    them; otherwise a product manager could tag a feature to empower himself."""
    if not has(user, "catalog.change_tag"):
        raise PermissionDenied("Only catalog admins may change tags.")


def can_change_feature_rules(user: User | None, feature: Feature | None = None) -> bool:
    """Edit a feature's targeting rules: the model permission, or the object permission on it."""
    return has(user, CHANGE_FEATURE, feature)


def can_change_feature_definition(user: User | None, feature: Feature | None = None) -> bool:
    """Edit what a feature is (every field and its tags): the model permission only, whatever
    object permissions the user holds on `feature`."""
    return has(user, CHANGE_FEATURE)


def can_grant_feature(user: User | None, feature: Feature) -> bool:
    """Grant or revoke the feature on a subscription (an override)."""
    return has(user, GRANT_FEATURE, feature)


def require_change_feature_rules(user: User | None, feature: Feature) -> None:
    if not can_change_feature_rules(user, feature):
        raise PermissionDenied(f"You may not change the targeting rules of {feature.key}.")


def require_change_feature_definition(user: User | None, feature: Feature) -> None:
    if not can_change_feature_definition(user, feature):
        raise PermissionDenied(
            f"You may change only the targeting rules of {feature.key}; its definition is for catalog admins."
        )


def require_add_feature(user: User | None) -> None:
    if not has(user, "catalog.add_feature"):
        raise PermissionDenied("You may not add features.")


def require_grant_feature(user: User | None, feature: Feature) -> None:
    if not can_grant_feature(user, feature):
        raise PermissionDenied(f"You may not grant or revoke {feature.key}.")


def require_catalog_perm(user: User | None, action: str, model: str) -> None:
    """Items, entitlements, tags and one-off permissions: holders of the model permission only."""
    if not has(user, f"catalog.{action}_{model}"):
        raise PermissionDenied(f"You may not {action} {model}s.")


def features_changeable_by(user: User | None) -> QuerySet[Feature]:
    from catalog.models import Feature, FeatureGroupPermission, FeatureUserPermission

    return objects_permitted(
        user, CHANGE_FEATURE, Feature.objects.all(), FeatureUserPermission, FeatureGroupPermission
    )


def features_grantable_by(user: User | None) -> QuerySet[Feature]:
    """Active features this user may grant or revoke (for forms and autocomplete)."""
    from catalog.models import Feature, FeatureGroupPermission, FeatureUserPermission

    return objects_permitted(
        user,
        GRANT_FEATURE,
        Feature.objects.filter(status=Feature.Status.ACTIVE),
        FeatureUserPermission,
        FeatureGroupPermission,
    )


def may_change_some_feature(user: User | None) -> bool:
    from catalog.models import FeatureGroupPermission, FeatureUserPermission

    return holds_any(user, CHANGE_FEATURE, FeatureUserPermission, FeatureGroupPermission)
