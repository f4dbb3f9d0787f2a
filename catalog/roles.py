"""The four staff roles (docs/permissions.md) as Django groups, with their model permissions.

Object permissions (which features and segments a role may edit or grant) come from tags;
these are only the model-level rights each role needs to reach the pages at all.
"""

ROLE_SALES, ROLE_SUPPORT, ROLE_PRODUCT, ROLE_CATALOG = "Sales", "Support", "Product", "Catalog admins"


def _perms(app: str, models: tuple[str, ...], actions: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [(app, model, action) for model in models for action in actions]


_VIEW_ALL = (
    _perms("catalog", ("feature", "item", "entitlement", "tag"), ("view",))
    + _perms("segments", ("segment", "segmentmember", "condition", "targetingrule"), ("view",))
    + _perms(
        "subscriptions", ("customer", "subscription", "subscriptionaddon", "override", "topup"), ("view",)
    )
    + _perms("usage", ("consumption",), ("view",))
    + _perms("audit", ("auditentry", "scheduledchange"), ("view",))
)
_OVERRIDES = _perms("subscriptions", ("override",), ("add", "change", "delete"))

ROLE_PERMISSIONS: dict[str, list[tuple[str, str, str]]] = {
    ROLE_SALES: _VIEW_ALL
    + _OVERRIDES
    + _perms("subscriptions", ("customer", "subscription", "subscriptionaddon"), ("add", "change"))
    + _perms("subscriptions", ("subscriptionaddon",), ("delete",)),
    # Support tops up a metered limit for the current period (subscriptions.TopUp).
    ROLE_SUPPORT: _VIEW_ALL + _OVERRIDES + _perms("subscriptions", ("topup",), ("add",)),
    ROLE_PRODUCT: _VIEW_ALL
    + _perms("segments", ("segment",), ("add",))
    + _perms("segments", ("segmentmember", "condition", "targetingrule"), ("add", "change", "delete")),
    ROLE_CATALOG: _VIEW_ALL
    + _perms("catalog", ("feature", "item", "entitlement", "tag"), ("add", "change", "delete"))
    + _perms("segments", ("targetingrule",), ("add", "change", "delete"))
    # Only catalog admins hand out one-off object permissions.
    + _perms(
        "catalog", ("featureuserpermission", "featuregrouppermission"), ("add", "change", "delete", "view")
    )
    + _perms(
        "segments", ("segmentuserpermission", "segmentgrouppermission"), ("add", "change", "delete", "view")
    ),
}

# Tags that exist from the start, each empowering the group of the same name.
INITIAL_TAGS = {"sales": ROLE_SALES, "support": ROLE_SUPPORT, "product": ROLE_PRODUCT}


def grant_role_permissions(apps) -> None:
    """Give each role (creating its group) the model permissions of ROLE_PERMISSIONS that exist
    in `apps` (a migration's app registry): a migration made before a model was added skips its
    permissions, and a later migration calls this again to grant them. Adding is idempotent."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, model, action in perms:
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=f"{action}_{model}"
            ).first()
            if permission is not None:
                group.permissions.add(permission)
