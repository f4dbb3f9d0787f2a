"""Who may change customers, subscriptions and overrides (docs/permissions.md).

Customers, subscriptions and add-ons follow model permissions (Sales holds them). An override
needs both the model permission and the right to grant its feature, which the feature's tags
hand out per object (Support for support-tagged features, Sales for sales-tagged ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied

from catalog import permissions as catalog_permissions

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from catalog.models import Feature


def require(user: User | None, action: str, model: str) -> None:
    """The model permission `subscriptions.<action>_<model>`."""
    if user is not None and not (user.is_active and user.has_perm(f"subscriptions.{action}_{model}")):
        raise PermissionDenied(f"You may not {action} {model}s.")


def can_override(user: User | None, action: str, feature: Feature) -> bool:
    if user is None:
        return True
    return (
        user.is_active
        and user.has_perm(f"subscriptions.{action}_override")
        and (catalog_permissions.can_grant_feature(user, feature))
    )


def require_override(user: User | None, action: str, feature: Feature) -> None:
    """Add, change or delete an override of `feature`."""
    require(user, action, "override")
    catalog_permissions.require_grant_feature(user, feature)


def can_top_up(user: User | None, feature: Feature) -> bool:
    """Add a top-up of `feature`: the model permission and the right to grant the feature."""
    if user is None:
        return True
    return (
        user.is_active
        and user.has_perm("subscriptions.add_topup")
        and catalog_permissions.can_grant_feature(user, feature)
    )


def require_top_up(user: User | None, feature: Feature) -> None:
    require(user, "add", "topup")
    catalog_permissions.require_grant_feature(user, feature)
