"""The four staff roles of DESIGN §3 as Django groups, with their model permissions.

Object permissions (which features and segments a role may edit or grant) come from tags;
these are only the model-level rights each role needs to reach the pages at all.
"""

ROLE_SALES, ROLE_SUPPORT, ROLE_PRODUCT, ROLE_CATALOG = "Sales", "Support", "Product", "Catalog admins"

_VIEW_ALL = (
    [("catalog", m, "view") for m in ("feature", "item", "entitlement", "tag")]
    + [("segments", m, "view") for m in ("segment", "segmentmember", "condition", "targetingrule")]
    + [("subscriptions", m, "view") for m in ("customer", "subscription", "subscriptionaddon", "override")]
)

_OVERRIDES = [("subscriptions", "override", a) for a in ("add", "change", "delete")]

ROLE_PERMISSIONS: dict[str, list[tuple[str, str, str]]] = {
    ROLE_SALES: _VIEW_ALL
    + _OVERRIDES
    + [
        ("subscriptions", m, a)
        for m in ("customer", "subscription", "subscriptionaddon")
        for a in ("add", "change")
    ]
    + [("subscriptions", "subscriptionaddon", "delete")],
    ROLE_SUPPORT: _VIEW_ALL + _OVERRIDES,
    ROLE_PRODUCT: _VIEW_ALL
    + [("segments", "segment", "add")]
    + [
        ("segments", m, a)
        for m in ("segmentmember", "condition", "targetingrule")
        for a in ("add", "change", "delete")
    ],
    ROLE_CATALOG: _VIEW_ALL
    + [
        ("catalog", m, a)
        for m in ("feature", "item", "entitlement", "tag")
        for a in ("add", "change", "delete")
    ]
    + [("segments", "targetingrule", a) for a in ("add", "change", "delete")],
}

# Tags that exist from the start, each empowering the group of the same name.
INITIAL_TAGS = {"sales": ROLE_SALES, "support": ROLE_SUPPORT, "product": ROLE_PRODUCT}
