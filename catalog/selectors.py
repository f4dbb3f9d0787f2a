"""Reads of the catalog shaped for resolution: features with their targeting rules, segment
rules, and each item's grants. Independent of any customer, so it can be cached whole per
catalog revision (see `subscriptions.selectors`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from catalog.models import Entitlement, Feature, Item
from segments.matching import ConditionSpec, RuleSpec, SegmentSpec
from segments.models import Condition, Segment
from subscriptions.resolution import FeatureSpec, ItemGrant, TargetingRuleSpec


@dataclass(frozen=True, slots=True)
class ItemInfo:
    key: str
    kind: str
    rank: int
    grace_days: int
    grants: tuple[ItemGrant, ...]


@dataclass(frozen=True, slots=True)
class CatalogSpecs:
    """The customer-independent half of a resolution's input."""

    features: tuple[FeatureSpec, ...]  # active features, by key
    segments: dict[str, SegmentSpec]  # rules only; lists are per customer
    segment_keys: dict[int, str]  # segment pk → key
    items: dict[int, ItemInfo]  # item pk → grants
    feature_ids: dict[str, int] = field(default_factory=dict)  # active features' key → pk


def feature_spec(feature: Feature, rules: tuple[TargetingRuleSpec, ...] = ()) -> FeatureSpec:
    """Map one feature row to the resolver's input."""
    return FeatureSpec(
        key=feature.key,
        kind=feature.kind,
        levels=tuple(feature.levels or ()),
        archived=feature.status == Feature.Status.ARCHIVED,
        markets=frozenset(str(code) for code in feature.markets),
        keep_when_delinquent=feature.keep_when_delinquent,
        fallback=feature.fallback,
        rules=rules,
        period=feature.period,
        period_anchor=feature.period_anchor,
        limit_type=feature.limit_type,
    )


def load_catalog_specs() -> CatalogSpecs:
    """Five queries, whatever the catalog's size: features, rules, segments, conditions, items
    with their entitlements."""
    rules_by_feature: dict[int, list[TargetingRuleSpec]] = defaultdict(list)
    from segments.models import TargetingRule

    for feature_id, segment_key, value in TargetingRule.objects.order_by(
        "feature_id", "position"
    ).values_list("feature_id", "segment__key", "value"):
        rules_by_feature[feature_id].append(TargetingRuleSpec(segment_key=segment_key, value=value))
    rows = list(Feature.objects.filter(status=Feature.Status.ACTIVE).order_by("key"))
    features = tuple(feature_spec(f, tuple(rules_by_feature.get(f.pk, ()))) for f in rows)
    feature_ids = {f.key: f.pk for f in rows}

    conditions: dict[int, dict[int, list[ConditionSpec]]] = defaultdict(lambda: defaultdict(list))
    for segment_id, rule, attribute, op, value in Condition.objects.order_by(
        "segment_id", "rule", "id"
    ).values_list("segment_id", "rule", "attribute", "op", "value"):
        conditions[segment_id][rule].append(ConditionSpec(attribute=attribute, op=op, value=value))
    segment_keys = dict(Segment.objects.values_list("pk", "key"))
    segments = {
        key: SegmentSpec(
            key=key,
            included=frozenset(),
            excluded=frozenset(),
            rules=tuple(RuleSpec(conditions=tuple(c)) for _, c in sorted(conditions.get(pk, {}).items())),
        )
        for pk, key in segment_keys.items()
    }

    grants: dict[int, list[ItemGrant]] = defaultdict(list)
    for item_id, feature_key, value in Entitlement.objects.values_list("item_id", "feature__key", "value"):
        grants[item_id].append(ItemGrant(feature_key=feature_key, value=value))
    items = {
        pk: ItemInfo(key=key, kind=kind, rank=rank, grace_days=grace, grants=tuple(grants.get(pk, ())))
        for pk, key, kind, rank, grace in Item.objects.values_list("pk", "key", "kind", "rank", "grace_days")
    }
    return CatalogSpecs(
        features=features, segments=segments, segment_keys=segment_keys, items=items, feature_ids=feature_ids
    )
