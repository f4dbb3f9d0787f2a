"""Batch write of the scheduled-change sweep for entitlements (`audit.batch`): PUT
`/items/{item_key}/entitlements/{feature_key}`, mirroring ItemEntitlementView.put and
services.entitlement_set step by step on rows loaded in bulk. `full_clean()` runs without its
queries: the item and the feature are rows just loaded, and the (item, feature) pair is
unique because the entitlement was looked up, locked, by that pair (see subscriptions.batch).
"""

from __future__ import annotations

from typing import Any

from audit.batch import Batch, BatchWrite, Replay, validated
from catalog import permissions
from catalog.api.serializers import EntitlementIn
from catalog.models import Entitlement, Feature, Item
from toolkit.upsert import is_noop, stored_values


class EntitlementPut(BatchWrite):
    order = 40

    def __init__(self, item_key: str, feature_key: str, value: Any) -> None:
        self.item_key, self.feature_key, self.value = item_key, feature_key, value

    @classmethod
    def parse(cls, method, kwargs, data):
        values = validated(EntitlementIn, data)
        return None if values is None else cls(kwargs["item_key"], kwargs["feature_key"], values["value"])

    @classmethod
    def prefetch(cls, writes, batch):
        rows = batch.rows
        rows.load(Item.objects.all(), "key", [w.item_key for w in writes])
        rows.load(Feature.objects.all(), "key", [w.feature_key for w in writes])
        items = {w.item_key: rows.get(Item, "key", w.item_key) for w in writes}
        features = {w.feature_key: rows.get(Feature, "key", w.feature_key) for w in writes}
        pairs = {
            (items[w.item_key].pk, features[w.feature_key].pk)
            for w in writes
            if items[w.item_key] is not None and features[w.feature_key] is not None
        }
        held: dict[tuple[int, int], Entitlement | None] = dict.fromkeys(pairs)
        if pairs:
            locked = (
                Entitlement.objects.select_for_update()
                .filter(item_id__in={i for i, _ in pairs}, feature_id__in={f for _, f in pairs})
                .order_by("pk")
            )
            for entitlement in locked:
                key = (entitlement.item_id, entitlement.feature_id)
                if key in held:
                    held[key] = entitlement
        rows.extra["entitlements"] = held

    def apply(self, batch: Batch) -> None:
        actor = batch.authors[self.change.created_by_id]
        item = batch.rows.get(Item, "key", self.item_key)
        feature = batch.rows.get(Feature, "key", self.feature_key)
        if item is None or feature is None:
            raise Replay("404")
        held = batch.rows.extra["entitlements"]
        if (item.pk, feature.pk) not in held:
            raise Replay("not loaded")
        current = held[(item.pk, feature.pk)]
        if current is not None:
            batch.touch(current)
            # The rows the view would read through these foreign keys.
            current.item, current.feature = item, feature
            before = stored_values(current)
            current.value = self.value
            if is_noop(current, before):
                permissions.require_catalog_perm(actor, "change", "entitlement")
                return
        permissions.require_catalog_perm(actor, "change" if current else "add", "entitlement")
        entitlement = current or Entitlement(item=item, feature=feature)
        entitlement.value = self.value
        batch.full_clean(entitlement, exclude=["item", "feature"])
        if current is None:
            batch.writes.created(entitlement)
            held[(item.pk, feature.pk)] = entitlement
        else:
            batch.writes.changed(entitlement)
        batch.catalog_changed()
