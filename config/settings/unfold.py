"""django-unfold: the admin's face.

There is no public site besides the admin and the API: "View site" and the login page's
"Return to site" are hidden (SITE_URL None), and the server's root redirects to the admin.
"""

from django.templatetags.static import static
from django.urls import reverse_lazy

UNFOLD = {
    "SITE_TITLE": "Entitle",
    "SITE_HEADER": "Entitle",
    "SITE_SUBHEADER": "Who may use what, and why",
    "SITE_SYMBOL": "verified_user",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "SITE_URL": None,
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("entitle/favicon.svg")},
    ],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": [
            {
                "title": "Customers",
                "items": [
                    {
                        "title": "Customers",
                        "icon": "groups",
                        "link": reverse_lazy("admin:subscriptions_customer_changelist"),
                    },
                    {
                        "title": "Subscriptions",
                        "icon": "receipt_long",
                        "link": reverse_lazy("admin:subscriptions_subscription_changelist"),
                    },
                    {
                        "title": "Overrides",
                        "icon": "tune",
                        "link": reverse_lazy("admin:subscriptions_override_changelist"),
                    },
                    {
                        "title": "Top-ups",
                        "icon": "add_chart",
                        "link": reverse_lazy("admin:subscriptions_topup_changelist"),
                    },
                    {
                        "title": "Usage",
                        "icon": "speed",
                        "link": reverse_lazy("admin:usage_consumption_changelist"),
                    },
                ],
            },
            {
                "title": "Catalog",
                "items": [
                    {
                        "title": "Features",
                        "icon": "toggle_on",
                        "link": reverse_lazy("admin:catalog_feature_changelist"),
                    },
                    {
                        "title": "Plans, add-ons and charges",
                        "icon": "inventory_2",
                        "link": reverse_lazy("admin:catalog_item_changelist"),
                    },
                    {
                        "title": "Entitlements",
                        "icon": "checklist",
                        "link": reverse_lazy("admin:catalog_entitlement_changelist"),
                    },
                    {"title": "Tags", "icon": "sell", "link": reverse_lazy("admin:catalog_tag_changelist")},
                ],
            },
            {
                "title": "Change control",
                "items": [
                    {
                        "title": "Audit log",
                        "icon": "history",
                        "link": reverse_lazy("admin:audit_auditentry_changelist"),
                    },
                    {
                        "title": "Scheduled changes",
                        "icon": "schedule",
                        "link": reverse_lazy("admin:audit_scheduledchange_changelist"),
                    },
                ],
            },
            {
                "title": "Targeting",
                "items": [
                    {
                        "title": "Segments",
                        "icon": "diversity_3",
                        "link": reverse_lazy("admin:segments_segment_changelist"),
                    },
                ],
            },
        ],
    },
}
