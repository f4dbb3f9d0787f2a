"""Every customer resolved, a batch at a time: the rows of many customers loaded in five
queries per batch and mapped to the pure resolver's input exactly as
`subscriptions.selectors.customer_state` / `customer_segments` map one customer's.

Batches are ranges of customer ids (keyset pagination), so no query carries a list of ids and
no batch re-reads the customers of another.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.selectors import CatalogSpecs
from segments.matching import SegmentSpec
from segments.models import SegmentMember
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from subscriptions.resolution import (
    DEAD,
    AddonSpec,
    CustomerState,
    OverrideSpec,
    Resolution,
    SubscriptionSpec,
    resolve_entitlements,
    subscription_phase,
)


@dataclass(frozen=True, slots=True)
class ResolvedCustomer:
    """One customer's answers at an instant, with what the dashboard filters on."""

    customer_id: int
    country: str
    plans: tuple[str, ...]  # keys of the plans of its live or delinquent subscriptions, sorted
    resolution: Resolution


def resolved_customers(
    catalog: CatalogSpecs, *, now: datetime, batch_size: int = 2000
) -> Iterator[list[ResolvedCustomer]]:
    """Every customer resolved at `now`, one list per batch of `batch_size` customers."""
    last_id = 0
    while True:
        customers = list(
            Customer.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values("pk", "external_id", "country", "traits")[:batch_size]
        )
        if not customers:
            return
        first_id, last_id = customers[0]["pk"], customers[-1]["pk"]
        states = customer_states(catalog, customers, first_id=first_id, last_id=last_id)
        members = segment_lists(first_id=first_id, last_id=last_id)
        batch = []
        for row in customers:
            state = states[row["pk"]]
            segments = customer_segments(catalog, state.external_id, members.get(row["pk"], ()))
            plans = {sub.plan_key for sub in state.subscriptions if subscription_phase(sub, now) != DEAD}
            batch.append(
                ResolvedCustomer(
                    customer_id=row["pk"],
                    country=state.country,
                    plans=tuple(sorted(plans)),
                    resolution=resolve_entitlements(catalog.features, state, segments, now),
                )
            )
        yield batch


def customer_states(
    catalog: CatalogSpecs, customers: Sequence[Mapping[str, Any]], *, first_id: int, last_id: int
) -> dict[int, CustomerState]:
    """The resolver's input for the customers with ids in [first_id, last_id]: three queries
    (subscriptions, add-ons, overrides), in the orders `customer_state` reads them."""
    in_range = {"customer_id__gte": first_id, "customer_id__lte": last_id}
    sub_in_range = {f"subscription__{key}": value for key, value in in_range.items()}
    subscriptions: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in Subscription.objects.filter(**in_range).values(
        "pk", "customer_id", "plan_id", "status", "trial_ends_at", "past_due_since"
    ):
        subscriptions[row["customer_id"]].append(row)
    addons: dict[int, list[AddonSpec]] = defaultdict(list)
    for sub_id, item_id, quantity in SubscriptionAddon.objects.filter(**sub_in_range).values_list(
        "subscription_id", "addon_id", "quantity"
    ):
        item = catalog.items[item_id]
        addons[sub_id].append(AddonSpec(key=item.key, quantity=quantity, grants=item.grants))
    overrides: dict[int, list[OverrideSpec]] = defaultdict(list)
    for override in Override.objects.filter(**sub_in_range).values(
        "pk", "subscription_id", "feature__key", "effect", "value", "valid_from", "valid_until"
    ):
        overrides[override["subscription_id"]].append(
            OverrideSpec(
                id=override["pk"],
                feature_key=override["feature__key"],
                effect=override["effect"],
                value=override["value"],
                valid_from=override["valid_from"],
                valid_until=override["valid_until"],
            )
        )
    states = {}
    for customer in customers:
        specs = []
        for sub in subscriptions.get(customer["pk"], ()):
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
                    addons=tuple(addons.get(sub["pk"], ())),
                    overrides=tuple(overrides.get(sub["pk"], ())),
                )
            )
        states[customer["pk"]] = CustomerState(
            external_id=customer["external_id"],
            country=str(customer["country"] or ""),
            traits=customer["traits"] or {},
            subscriptions=tuple(specs),
        )
    return states


def segment_lists(*, first_id: int, last_id: int) -> dict[int, list[tuple[int, str]]]:
    """(segment id, included|excluded) for each customer listed in a segment, one query."""
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for customer_id, segment_id, kind in SegmentMember.objects.filter(
        customer_id__gte=first_id, customer_id__lte=last_id
    ).values_list("customer_id", "segment_id", "kind"):
        members[customer_id].append((segment_id, kind))
    return members


def customer_segments(
    catalog: CatalogSpecs, external_id: str, listed: list[tuple[int, str]] | tuple[()]
) -> dict[str, SegmentSpec]:
    """The catalog's segments with this customer's own list entries filled in, as
    `subscriptions.selectors.customer_segments` does for one customer."""
    if not listed:
        return catalog.segments
    segments = dict(catalog.segments)
    for segment_id, kind in listed:
        key = catalog.segment_keys[segment_id]
        listed_one = frozenset({external_id})
        if kind == SegmentMember.Kind.INCLUDED:
            segments[key] = dataclasses.replace(segments[key], included=listed_one)
        else:
            segments[key] = dataclasses.replace(segments[key], excluded=listed_one)
    return segments
