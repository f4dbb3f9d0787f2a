"""Catalog endpoints (docs/api.md): features and their targeting rules, items, supersede, and
item entitlements. Writes go through `catalog.services` / `segments.services` as the key's
owner; a PUT that changes nothing only checks the permission the service would check."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog import permissions, services
from catalog.api.serializers import (
    EntitlementIn,
    EntitlementOut,
    FeatureIn,
    FeatureOut,
    ItemIn,
    ItemOut,
    SupersedeIn,
    TargetingRuleIn,
    TargetingRuleOut,
)
from catalog.models import Entitlement, Feature, Item, Tag
from segments import services as segment_services
from segments.models import Segment, TargetingRule
from toolkit.rest.exceptions import Conflict
from toolkit.rest.schema import body_example, path_parameter
from toolkit.rest.views import ApiListView, ApiView, ListQuery, Write
from toolkit.upsert import HeldRows

FEATURE_KEY = path_parameter("key", "The feature's key.", "max-members")
ITEM_KEY = path_parameter("key", "The item's key.", "business")


def _feature(key: str) -> Feature:
    feature = Feature.objects.prefetch_related("tags").filter(key=key).first()
    if feature is None:
        raise NotFound(f"No feature {key}.")
    return feature


def _item(key: str) -> Item:
    item = (
        Item.objects.select_related("superseded_by")
        .prefetch_related("entitlements__feature")
        .filter(key=key)
        .first()
    )
    if item is None:
        raise NotFound(f"No item {key}.")
    return item


def _tags(keys: list[str] | None) -> list[Tag] | None:
    if keys is None:
        return None
    found = {tag.key: tag for tag in Tag.objects.filter(key__in=set(keys))}
    unknown = sorted(set(keys) - set(found))
    if unknown:
        raise ValidationError({"tags": [f"Unknown tag {key}." for key in unknown]})
    return [found[key] for key in dict.fromkeys(keys)]


# --- features ------------------------------------------------------------------------------------


class FeatureQuery(ListQuery):
    status = serializers.ChoiceField(choices=Feature.Status.choices, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Feature.Kind.choices, required=False, allow_blank=True)
    tag = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Only features with this tag."
    )


@extend_schema(parameters=[FeatureQuery])
class FeatureListView(ApiListView):
    """Every feature, by key."""

    serializer_class = FeatureOut
    cursor_ordering = "key"
    query_class = FeatureQuery

    def get_queryset(self):
        features = Feature.objects.prefetch_related("tags")
        if "status" in self.query:
            features = features.filter(status=self.query["status"])
        if "kind" in self.query:
            features = features.filter(kind=self.query["kind"])
        if "tag" in self.query:
            features = features.filter(tags__key=self.query["tag"])
        return features


@extend_schema(parameters=[FEATURE_KEY])
class FeatureDetailView(ApiView):
    """One feature. PUT creates or replaces it (its key never changes); PATCH changes the
    fields given."""

    @extend_schema(responses=FeatureOut, operation_id="features_retrieve")
    def get(self, request, key: str):
        return Response(FeatureOut(_feature(key)).data)

    @extend_schema(
        request=FeatureIn,
        responses={200: FeatureOut, 201: FeatureOut},
        operation_id="features_put",
        examples=[
            body_example(
                "A quantity feature",
                {
                    "name": "Team members",
                    "kind": "quantity",
                    "levels": [5, 10, 25, 50],
                    "allow_unlimited": True,
                    "tags": ["sales"],
                },
            ),
            body_example(
                "A metered feature",
                {
                    "name": "API calls",
                    "kind": "metered",
                    "period": "month",
                    "period_anchor": "billing_cycle",
                    "limit_type": "hard",
                },
            ),
        ],
    )
    def put(self, request, key: str):
        return self._write(key)

    @extend_schema(
        request=FeatureIn,
        responses=FeatureOut,
        operation_id="features_patch",
        examples=[body_example("Rename", {"name": "Team seats"})],
    )
    def patch(self, request, key: str):
        return self._write(key)

    def _write(self, key: str):
        _, created = self.perform(key=key)
        return Response(FeatureOut(_feature(key)).data, status=status.HTTP_201_CREATED if created else 200)


def put_feature(data: dict, *, key: str, **who) -> tuple[Feature, bool]:
    values = dict(data)
    tags = _tags(values.pop("tags", None))
    return services.feature_put(key=key, values=values, tags=tags, **who)


FeatureDetailView.writes = {
    "PUT": Write(FeatureIn, put_feature, partial=False),
    "PATCH": Write(FeatureIn, put_feature, partial=True),
}


@extend_schema(parameters=[FEATURE_KEY])
class FeatureRulesView(ApiView):
    """A feature's targeting rules, in order: the first whose segment holds the customer
    serves its value. PUT replaces the whole list."""

    @extend_schema(responses=TargetingRuleOut(many=True), operation_id="features_rules_retrieve")
    def get(self, request, key: str):
        feature = _feature(key)
        return Response(TargetingRuleOut(_rules(feature), many=True).data)

    @extend_schema(
        request=TargetingRuleIn(many=True),
        responses=TargetingRuleOut(many=True),
        operation_id="features_rules_put",
        examples=[body_example("Beta users get more", [{"segment": "beta", "value": 50}])],
    )
    def put(self, request, key: str):
        feature = self.perform(key=key)
        return Response(TargetingRuleOut(_rules(feature), many=True).data)


def put_rules(data: list[dict], *, key: str, **who) -> Feature:
    keys = [rule["segment"] for rule in data]
    segments = {segment.key: segment for segment in Segment.objects.filter(key__in=set(keys))}
    if set(keys) - set(segments):
        raise ValidationError(
            [
                {} if rule["segment"] in segments else {"segment": [f"Unknown segment {rule['segment']}."]}
                for rule in data
            ]
        )
    feature = _feature(key)
    rules = [(segments[rule["segment"]], rule["value"]) for rule in data]
    segment_services.feature_set_rules(feature=feature, rules=rules, **who)
    return feature


FeatureRulesView.writes = {"PUT": Write(TargetingRuleIn, put_rules, many=True)}


def _rules(feature: Feature) -> list[TargetingRule]:
    return list(feature.rules.select_related("segment").order_by("position"))


# --- items ---------------------------------------------------------------------------------------


class ItemQuery(ListQuery):
    kind = serializers.ChoiceField(choices=Item.Kind.choices, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Item.Status.choices, required=False, allow_blank=True)


@extend_schema(parameters=[ItemQuery])
class ItemListView(ApiListView):
    """Every plan, add-on and charge, by key."""

    serializer_class = ItemOut
    cursor_ordering = "key"
    query_class = ItemQuery

    def get_queryset(self):
        items = Item.objects.select_related("superseded_by").prefetch_related("entitlements__feature")
        if "kind" in self.query:
            items = items.filter(kind=self.query["kind"])
        if "status" in self.query:
            items = items.filter(status=self.query["status"])
        return items


@extend_schema(parameters=[ITEM_KEY])
class ItemDetailView(ApiView):
    """One plan, add-on or charge. PUT creates or replaces it; PATCH changes the fields given."""

    @extend_schema(responses=ItemOut, operation_id="items_retrieve")
    def get(self, request, key: str):
        return Response(ItemOut(_item(key)).data)

    @extend_schema(
        request=ItemIn,
        responses={200: ItemOut, 201: ItemOut},
        operation_id="items_put",
        examples=[
            body_example(
                "A plan",
                {"kind": "plan", "name": "Business", "rank": 20, "grace_days": 14, "external_id": "price_1"},
            )
        ],
    )
    def put(self, request, key: str):
        return self._write(key)

    @extend_schema(
        request=ItemIn,
        responses=ItemOut,
        operation_id="items_patch",
        examples=[body_example("Grace period", {"grace_days": 21})],
    )
    def patch(self, request, key: str):
        return self._write(key)

    def _write(self, key: str):
        _, created = self.perform(key=key)
        return Response(ItemOut(_item(key)).data, status=status.HTTP_201_CREATED if created else 200)


def put_item(data: dict, *, key: str, **who) -> tuple[Item, bool]:
    return services.item_put(key=key, values=data, **who)


ItemDetailView.writes = {
    "PUT": Write(ItemIn, put_item, partial=False),
    "PATCH": Write(ItemIn, put_item, partial=True),
}


@extend_schema(parameters=[ITEM_KEY])
class ItemSupersedeView(ApiView):
    """Copy a plan with its entitlements to `new_key` and mark the old one legacy: its
    subscribers keep exactly what they have; new subscriptions go on the successor."""

    @extend_schema(
        request=SupersedeIn,
        responses={201: ItemOut},
        operation_id="items_supersede",
        examples=[body_example("New prices", {"new_key": "business-2027"})],
    )
    def post(self, request, key: str):
        successor = self.perform(key=key)
        return Response(ItemOut(_item(successor.key)).data, status=status.HTTP_201_CREATED)


def supersede_item(data: dict, *, key: str, actor, **who) -> Item:
    item = _item(key)
    permissions.require_catalog_perm(actor, "add", "item")
    new_key = data["new_key"]
    if Item.objects.filter(key=new_key).exists():
        raise Conflict(f"An item with the key {new_key} already exists.")
    return services.item_supersede(
        item=item, new_key=new_key, new_name=data.get("new_name", ""), actor=actor, **who
    )


ItemSupersedeView.writes = {"POST": Write(SupersedeIn, supersede_item)}


@extend_schema(
    parameters=[
        path_parameter("item_key", "The item's key.", "business"),
        path_parameter("feature_key", "The feature's key.", "max-members"),
    ]
)
class ItemEntitlementView(ApiView):
    """The value of one feature that one item gives. PUT sets it (applying at once to every
    subscription on the item); DELETE takes the feature out of the item."""

    @extend_schema(responses=EntitlementOut, operation_id="items_entitlements_retrieve")
    def get(self, request, item_key: str, feature_key: str):
        return Response(EntitlementOut(_entitlement(item_key, feature_key)).data)

    @extend_schema(
        request=EntitlementIn,
        responses={200: EntitlementOut, 201: EntitlementOut},
        examples=[
            body_example("25 members", {"value": 25}),
            body_example("10,000 API calls a period", {"value": 10_000}),
            body_example("No limit", {"value": "unlimited"}),
        ],
        operation_id="items_entitlements_put",
    )
    def put(self, request, item_key: str, feature_key: str):
        entitlement, created = self.perform(item_key=item_key, feature_key=feature_key)
        return Response(EntitlementOut(entitlement).data, status=status.HTTP_201_CREATED if created else 200)

    @extend_schema(responses={204: None}, operation_id="items_entitlements_delete")
    def delete(self, request, item_key: str, feature_key: str):
        self.perform(item_key=item_key, feature_key=feature_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _entitlement(item_key: str, feature_key: str) -> Entitlement:
    item = Item.objects.filter(key=item_key).first()
    if item is None:
        raise NotFound(f"No item {item_key}.")
    feature = Feature.objects.filter(key=feature_key).first()
    if feature is None:
        raise NotFound(f"No feature {feature_key}.")
    entitlement = (
        Entitlement.objects.select_related("item", "feature").filter(item=item, feature=feature).first()
    )
    if entitlement is None:
        raise NotFound(f"{item.key} gives no {feature.key}.")
    return entitlement


def put_entitlement(data: dict, *, item_key: str, feature_key: str, **who) -> tuple[Entitlement, bool]:
    return services.entitlement_put(item_key=item_key, feature_key=feature_key, value=data["value"], **who)


def remove_entitlement(data: None, *, item_key: str, feature_key: str, **who) -> None:
    services.entitlement_remove(entitlement=_entitlement(item_key, feature_key), **who)


def preload_entitlements(rows: HeldRows, paths: list[dict], bodies: list[dict]) -> None:
    rows.load(Item.objects.all(), "key", [p["item_key"] for p in paths])
    rows.load(Feature.objects.all(), "key", [p["feature_key"] for p in paths])
    pairs = []
    for path in paths:
        item = rows.get(Item, {"key": path["item_key"]})
        feature = rows.get(Feature, {"key": path["feature_key"]})
        if item is not None and feature is not None:
            pairs.append((feature.pk, item.pk))
    rows.load(Entitlement.objects.select_for_update(), ("feature_id", "item_id"), pairs)


ItemEntitlementView.writes = {
    "PUT": Write(EntitlementIn, put_entitlement, preload=preload_entitlements),
    "DELETE": Write(None, remove_entitlement),
}
