"""Who may change the catalog and who may grant a feature (DESIGN §3).

A model permission (held by a role such as Catalog admins) covers every object; an object
permission held through guardian covers one feature. `None` as the user means a system job
(migrations, seeding, lifecycle sweeps), which is trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from catalog.models import Feature

CHANGE_FEATURE = "catalog.change_feature"
GRANT_FEATURE = "catalog.grant_feature"


def _has(user: User | None, perm: str, obj: object | None = None) -> bool:
    if user is None:
        return True
    if not user.is_active:
        return False
    return user.has_perm(perm) or (obj is not None and user.has_perm(perm, obj))


def can_change_feature(user: User | None, feature: Feature | None = None) -> bool:
    """Edit a feature's definition and targeting rules."""
    return _has(user, CHANGE_FEATURE, feature)


def can_grant_feature(user: User | None, feature: Feature) -> bool:
    """Grant or revoke the feature on a subscription (an override)."""
    return _has(user, GRANT_FEATURE, feature)


def require_change_feature(user: User | None, feature: Feature) -> None:
    if not can_change_feature(user, feature):
        raise PermissionDenied(f"You may not change the feature {feature.key}.")


def require_add_feature(user: User | None) -> None:
    if not _has(user, "catalog.add_feature"):
        raise PermissionDenied("You may not add features.")


def require_grant_feature(user: User | None, feature: Feature) -> None:
    if not can_grant_feature(user, feature):
        raise PermissionDenied(f"You may not grant or revoke {feature.key}.")


def require_catalog_perm(user: User | None, action: str, model: str) -> None:
    """Items, entitlements and tags are edited by holders of the model permission only."""
    if not _has(user, f"catalog.{action}_{model}"):
        raise PermissionDenied(f"You may not {action} {model}s.")
