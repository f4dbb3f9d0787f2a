"""Reads about customers: their state as the resolver's input, and their resolved answers."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime

from django.utils import timezone

from catalog.selectors import CatalogSpecs, load_catalog_specs
from segments.matching import SegmentSpec
from segments.models import SegmentMember
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from subscriptions.resolution import (
    AddonSpec,
    CustomerState,
    OverrideSpec,
    Resolution,
    SubscriptionSpec,
    resolve_entitlements,
)


def customer_state(customer: Customer, catalog: CatalogSpecs) -> CustomerState:
    """Map one customer's rows to the resolver's input: three queries (subscriptions,
    add-ons, overrides). Grants come from the catalog specs, not the database."""
    subscriptions = list(
        Subscription.objects.filter(customer=customer).values(
            "pk", "plan_id", "status", "trial_ends_at", "past_due_since"
        )
    )
    ids = [s["pk"] for s in subscriptions]
    addons: dict[int, list[AddonSpec]] = defaultdict(list)
    overrides: dict[int, list[OverrideSpec]] = defaultdict(list)
    if ids:
        for sub_id, item_id, quantity in SubscriptionAddon.objects.filter(
            subscription_id__in=ids
        ).values_list("subscription_id", "addon_id", "quantity"):
            item = catalog.items[item_id]
            addons[sub_id].append(AddonSpec(key=item.key, quantity=quantity, grants=item.grants))
        for row in Override.objects.filter(subscription_id__in=ids).values(
            "pk", "subscription_id", "feature__key", "effect", "value", "valid_from", "valid_until"
        ):
            overrides[row["subscription_id"]].append(
                OverrideSpec(
                    id=row["pk"],
                    feature_key=row["feature__key"],
                    effect=row["effect"],
                    value=row["value"],
                    valid_from=row["valid_from"],
                    valid_until=row["valid_until"],
                )
            )
    specs = []
    for sub in subscriptions:
        plan = catalog.items[sub["plan_id"]]
        specs.append(
            SubscriptionSpec(
                id=sub["pk"],
                plan_key=plan.key,
                plan_rank=plan.rank,
                grace_days=plan.grace_days,
                status=sub["status"],
                trial_ends_at=sub["trial_ends_at"],
                past_due_since=sub["past_due_since"],
                plan_grants=plan.grants,
                addons=tuple(addons[sub["pk"]]),
                overrides=tuple(overrides[sub["pk"]]),
            )
        )
    return CustomerState(
        external_id=customer.external_id,
        country=str(customer.country or ""),
        traits=customer.traits or {},
        subscriptions=tuple(specs),
    )


def customer_segments(customer: Customer, catalog: CatalogSpecs) -> dict[str, SegmentSpec]:
    """The catalog's segments with this customer's explicit list entries filled in (one
    query): a segment's full lists are never loaded to answer for one customer."""
    segments = dict(catalog.segments)
    for segment_id, kind in SegmentMember.objects.filter(customer=customer).values_list("segment_id", "kind"):
        key = catalog.segment_keys[segment_id]
        listed = frozenset({customer.external_id})
        field = "included" if kind == SegmentMember.Kind.INCLUDED else "excluded"
        segments[key] = dataclasses.replace(segments[key], **{field: listed})
    return segments


def resolve_customer(
    customer: Customer, *, now: datetime | None = None, catalog: CatalogSpecs | None = None
) -> Resolution:
    """Every active feature's answer for `customer` at `now` (DESIGN §2)."""
    catalog = catalog or load_catalog_specs()
    return resolve_entitlements(
        catalog.features,
        customer_state(customer, catalog),
        customer_segments(customer, catalog),
        now or timezone.now(),
    )
