"""Load the demo catalogue (docs/operations.md, the demo). Running it again changes nothing: every object is
looked up by its key first and only created when missing."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Feature, Item, Tag
from catalog.roles import ROLE_CATALOG, ROLE_PRODUCT, ROLE_SALES, ROLE_SUPPORT
from segments import services as segment_services
from segments.models import Segment
from subscriptions import services
from subscriptions.models import Customer, Override, Subscription
from toolkit.change_context import change_context, request_scope

DEMO_PASSWORD = "entitle-demo"
REASON = "Demo catalogue loaded by seed_demo."
WHO = {"actor": None, "reason": REASON, "source": "shell"}

FEATURES = [
    # key, name, kind, extra fields, tags
    (
        "max-members",
        "Team members",
        "quantity",
        {"levels": [5, 10, 25, 50], "allow_unlimited": True},
        ["sales"],
    ),
    ("max-simultaneous-streams", "Simultaneous streams", "quantity", {"levels": [1, 2, 4]}, []),
    ("4k-streaming", "4K streaming", "switch", {}, ["support"]),
    ("live-sports", "Live sports", "switch", {"markets": ["GB", "IE"]}, []),
    ("additional-users", "Additional users", "quantity", {"levels": [5, 10, 20]}, []),
    ("api-calls-per-day", "API calls per day", "range", {"min_value": 100, "max_value": 1000}, []),
    (
        "support-level",
        "Support level",
        "custom",
        {"levels": ["email", "email+chat", "email+chat+sla"]},
        ["support"],
    ),
    ("change-request", "Change requests", "switch", {}, []),
    ("change-request-version", "Change request version", "custom", {"levels": ["v1", "v2"]}, ["product"]),
    ("data-export", "Data export", "switch", {"keep_when_delinquent": True, "fallback": "allow"}, []),
    (
        "api-calls",
        "API calls",
        "metered",
        {"period": "month", "period_anchor": "billing_cycle", "limit_type": "hard", "fallback": "allow"},
        ["support"],
    ),
    (
        "ai-tokens",
        "AI tokens",
        "metered",
        {
            "period": "month",
            "period_anchor": "calendar",
            "limit_type": "soft",
            "allow_unlimited": True,
            "fallback": "last_known",
        },
        ["support"],
    ),
]

ITEMS = [
    # key, name, kind, rank, grace_days, status, entitlements
    ("starter", "Starter", "plan", 5, 7, "active", {"max-members": 5}),
    (
        "business",
        "Business",
        "plan",
        20,
        14,
        "active",
        {"max-members": 25, "data-export": True, "ai-tokens": 2_000_000},
    ),
    (
        "enterprise",
        "Enterprise",
        "plan",
        30,
        30,
        "active",
        {"max-members": "unlimited", "data-export": True, "ai-tokens": "unlimited"},
    ),
    (
        "business-2024",
        "Business (2024 prices)",
        "plan",
        20,
        14,
        "legacy",
        {"max-members": 50, "data-export": True},
    ),
    ("extra-seats", "Extra seats", "addon", 0, 0, "active", {"max-members": 5}),
    ("streaming-standard", "Streaming Standard", "plan", 10, 7, "active", {"max-simultaneous-streams": 1}),
    (
        "streaming-premium",
        "Streaming Premium",
        "plan",
        20,
        7,
        "active",
        {"max-simultaneous-streams": 4, "4k-streaming": True, "live-sports": True},
    ),
    (
        "basic",
        "Basic",
        "plan",
        10,
        7,
        "active",
        {
            "additional-users": 5,
            "api-calls-per-day": 100,
            "api-calls": 1_000,
            "support-level": "email",
            "change-request-version": "v1",
        },
    ),
    (
        "standard",
        "Standard",
        "plan",
        20,
        7,
        "active",
        {
            "additional-users": 10,
            "api-calls-per-day": 500,
            "api-calls": 10_000,
            "support-level": "email+chat",
            "change-request-version": "v1",
        },
    ),
    (
        "advanced",
        "Advanced",
        "plan",
        30,
        14,
        "active",
        {
            "additional-users": 20,
            "api-calls-per-day": 1000,
            "api-calls": 100_000,
            "support-level": "email+chat+sla",
            "change-request-version": "v1",
        },
    ),
]

# external_id, name, country, subscription: (plan, status, extra) or None, add-ons
CUSTOMERS = [
    ("acme", "Acme Corp", "US", ("business", "active", {}), [("extra-seats", 2)]),
    ("globex", "Globex", "DE", ("enterprise", "active", {}), []),
    ("initech", "Initech", "GB", ("starter", "trialing", {"trial_ends_at": 10}), []),
    ("umbrella", "Umbrella", "FR", ("business", "past_due", {"past_due_since": -3}), []),
    ("hooli", "Hooli", "US", ("business", "past_due", {"past_due_since": -30}), []),
    ("vandelay", "Vandelay Industries", "US", ("business-2024", "active", {}), []),
    ("streamfan", "Stream Fan", "GB", ("streaming-standard", "active", {}), []),
    ("cinephile", "Cinephile", "US", ("streaming-premium", "active", {}), []),
    ("sportsbar", "Sports Bar", "IE", ("streaming-premium", "active", {}), []),
    ("northwind", "Northwind", "DE", ("basic", "active", {}), []),
    ("contoso", "Contoso", "FR", ("advanced", "active", {}), []),
    ("fabrikam", "Fabrikam", "ES", ("standard", "paused", {}), []),
    ("oldco", "Old Co", "IT", ("basic", "canceled", {}), []),
    ("tryhard", "Tryhard", "NL", ("standard", "trialing", {"trial_ends_at": -2}), []),
    ("prospect", "Prospect Ltd", "SE", None, []),
]

USERS = [
    ("admin", None),
    ("sales", ROLE_SALES),
    ("support", ROLE_SUPPORT),
    ("product", ROLE_PRODUCT),
    ("catalog", ROLE_CATALOG),
]


class Command(BaseCommand):
    help = "Load the demo catalogue, customers, segments and one user per role (idempotent)."

    def handle(self, *args, **options):
        # One command run is one request in the audit log.
        with request_scope(), transaction.atomic():
            self._seed()

    def _seed(self):
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        created = 0
        created += self._users()
        tags = {tag.key: tag for tag in Tag.objects.all()}
        features = {}
        for key, name, kind, extra, tag_keys in FEATURES:
            feature = Feature.objects.filter(key=key).first()
            if feature is None:
                feature = catalog_services.feature_save(
                    feature=Feature(key=key, name=name, kind=kind, **extra),
                    tags=[tags[k] for k in tag_keys],
                    **WHO,
                )
                created += 1
            features[key] = feature
        items, grandfather = {}, []
        for key, name, kind, rank, grace, status, entitlements in ITEMS:
            item = Item.objects.filter(key=key).first()
            if item is None:
                item = catalog_services.item_save(
                    item=Item(key=key, name=name, kind=kind, rank=rank, grace_days=grace), **WHO
                )
                for feature_key, value in entitlements.items():
                    catalog_services.entitlement_put(
                        item_key=item.key, feature_key=feature_key, value=value, **WHO
                    )
                if status != "active":
                    grandfather.append((item, status))
                created += 1
            items[key] = item
        customers = {}
        for external_id, name, country, sub, addons in CUSTOMERS:
            customer = Customer.objects.filter(external_id=external_id).first()
            if customer is None:
                customer = services.customer_save(
                    customer=Customer(external_id=external_id, name=name, country=country), **WHO
                )
                if sub is not None:
                    plan, status, dates = sub
                    subscription = Subscription(
                        external_id=f"sub-{external_id}",
                        customer=customer,
                        plan=items[plan],
                        status=status,
                        current_period_end=now + timedelta(days=20),
                        **{field: now + timedelta(days=days) for field, days in dates.items()},
                    )
                    services.subscription_save(subscription=subscription, **WHO)
                    services.subscription_set_addons(
                        subscription=subscription, addons=[(items[k], q) for k, q in addons], **WHO
                    )
                created += 1
            customers[external_id] = customer
        for item, status in grandfather:
            # Created active so that its subscribers above could join, then grandfathered.
            item.status = status
            catalog_services.item_save(item=item, **WHO)
        created += self._event_override(customers["streamfan"], features["4k-streaming"], now)
        created += self._coming_seats(customers["vandelay"], features["max-members"], now)
        created += self._segments(customers, features, tags)
        self.stdout.write(self.style.SUCCESS(f"Demo catalogue ready ({created} objects created)."))

    def _users(self) -> int:
        created = 0
        for username, role in USERS:
            if User.objects.filter(username=username).exists():
                continue
            user = User(
                username=username,
                is_staff=True,
                is_superuser=role is None,
                email=f"{username}@entitle.example",
            )
            user.set_password(DEMO_PASSWORD)
            user.save()
            if role:
                with change_context(**WHO):  # role memberships are recorded like any change
                    user.groups.add(Group.objects.get(name=role))
            created += 1
        return created

    def _event_override(self, customer: Customer, feature: Feature, now) -> int:
        subscription = customer.subscriptions.get()
        if Override.objects.filter(subscription=subscription, feature=feature).exists():
            return 0
        # Support's 4K for the weekend of an event: live now, ends in two days.
        services.override_grant(
            subscription=subscription,
            feature=feature,
            value=True,
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=2),
            **WHO,
        )
        return 1

    def _coming_seats(self, customer: Customer, feature: Feature, now) -> int:
        """Sales' negotiated 60 seats (not one of the plans' levels) from the first of next
        month: an override that has not started yet, so the customer page shows it coming and
        says the plan's 50 hold only until then. Open-ended, so the dashboard's "ending in the
        next 7 days" keeps only support's live weekend."""
        subscription = customer.subscriptions.get()
        if Override.objects.filter(subscription=subscription, feature=feature).exists():
            return 0
        first_of_next_month = (now.replace(day=1, hour=0) + timedelta(days=32)).replace(day=1)
        services.override_grant(
            subscription=subscription,
            feature=feature,
            value=60,
            valid_from=first_of_next_month,
            actor=None,
            reason=f"{REASON} Renewal signed for 60 seats, see https://crm.example/deal/412",
            source="shell",
        )
        return 1

    def _segments(self, customers, features, tags) -> int:
        created = 0
        if not Segment.objects.filter(key="basic-or-higher").exists():
            segment = segment_services.segment_save(
                segment=Segment(key="basic-or-higher", name="Basic subscription or higher"), tags=[], **WHO
            )
            segment_services.segment_set_rules(
                segment=segment, rules=[[{"attribute": "plan_rank", "op": "gte", "value": 10}]], **WHO
            )
            segment_services.feature_set_rules(
                feature=features["change-request"], rules=[(segment, True)], **WHO
            )
            created += 1
        if not Segment.objects.filter(key="beta").exists():
            segment = segment_services.segment_save(
                segment=Segment(key="beta", name="Common beta users"), tags=[tags["product"]], **WHO
            )
            segment_services.segment_set_lists(
                segment=segment, included=[customers["contoso"], customers["acme"]], excluded=[], **WHO
            )
            segment_services.feature_set_rules(
                feature=features["change-request-version"], rules=[(segment, "v2")], **WHO
            )
            created += 1
        return created
