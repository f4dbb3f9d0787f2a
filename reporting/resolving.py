"""Every customer resolved, a batch at a time: the rows of many customers loaded in five
queries per batch through the same mapping as one customer's
(`subscriptions.selectors.customer_states` / `listed_segments`).

Batches are ranges of customer ids (keyset pagination), so no query carries a list of ids and
no batch re-reads the customers of another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from catalog.selectors import CatalogSpecs
from segments.models import SegmentMember
from subscriptions.models import Customer
from subscriptions.resolution import DEAD, Resolution, resolve_entitlements, subscription_phase
from subscriptions.selectors import CUSTOMER_FIELDS, customer_states, listed_segments


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
            Customer.objects.filter(pk__gt=last_id).order_by("pk").values(*CUSTOMER_FIELDS)[:batch_size]
        )
        if not customers:
            return
        first_id, last_id = customers[0]["pk"], customers[-1]["pk"]
        states = customer_states(catalog, customers, customer_id__gte=first_id, customer_id__lte=last_id)
        members = segment_lists(first_id=first_id, last_id=last_id)
        batch = []
        for row in customers:
            state = states[row["pk"]]
            segments = listed_segments(catalog, state.external_id, members.get(row["pk"], ()))
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


def segment_lists(*, first_id: int, last_id: int) -> dict[int, list[tuple[int, str]]]:
    """(segment id, included|excluded) for each customer listed in a segment, one query."""
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for customer_id, segment_id, kind in SegmentMember.objects.filter(
        customer_id__gte=first_id, customer_id__lte=last_id
    ).values_list("customer_id", "segment_id", "kind"):
        members[customer_id].append((segment_id, kind))
    return members
