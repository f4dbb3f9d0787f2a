"""Catalog endpoints (docs/api.md): features and their targeting rules, items, supersede, and
item entitlements. Writes go through `catalog.services` / `segments.services` as the key's
owner; a PUT that changes nothing only checks the permission the service would check."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
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
from catalog.values import clean_value
from segments import services as segment_services
from segments.models import Segment, TargetingRule
from toolkit.rest.errors import Conflict
from toolkit.rest.schema import body_example, path_parameter
from toolkit.rest.views import ApiListView, ApiView, ListQuery
from toolkit.upsert import assign, is_noop, locked, stored_values

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
            )
        ],
    )
    def put(self, request, key: str):
        return self._write(request, key, partial=False)

    @extend_schema(
        request=FeatureIn,
        responses=FeatureOut,
        operation_id="features_patch",
        examples=[body_example("Rename", {"name": "Team seats"})],
    )
    def patch(self, request, key: str):
        return self._write(request, key, partial=True)

    def _write(self, request, key: str, *, partial: bool):
        body = FeatureIn(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        tags = _tags(values.pop("tags", None))
        who = self.who()
        with transaction.atomic():
            feature, before = locked(Feature.objects, partial=partial, missing=f"No feature {key}.", key=key)
            created = feature is None
            if created:
                feature = Feature(key=key)
            if (
                tags is not None
                and not created
                and {t.pk for t in tags} == {t.pk for t in feature.tags.all()}
            ):
                tags = None  # the same tags: setting them again would be a no-op write
            assign(feature, values)
            if tags is None and is_noop(feature, before):
                permissions.require_change_feature_rules(who["actor"], feature)
            else:
                services.feature_save(feature=feature, tags=tags, **who)
        return Response(FeatureOut(_feature(key)).data, status=status.HTTP_201_CREATED if created else 200)


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
        body = TargetingRuleIn(data=request.data, many=True)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        keys = [rule["segment"] for rule in wanted]
        segments = {segment.key: segment for segment in Segment.objects.filter(key__in=set(keys))}
        if set(keys) - set(segments):
            raise ValidationError(
                [
                    {}
                    if rule["segment"] in segments
                    else {"segment": [f"Unknown segment {rule['segment']}."]}
                    for rule in wanted
                ]
            )
        who = self.who()
        with transaction.atomic():
            feature = _feature(key)
            rules = [(segments[rule["segment"]], rule["value"]) for rule in wanted]
            if _same_rules(feature, rules):
                permissions.require_change_feature_rules(who["actor"], feature)
            else:
                segment_services.feature_set_rules(feature=feature, rules=rules, **who)
        return Response(TargetingRuleOut(_rules(feature), many=True).data)


def _rules(feature: Feature) -> list[TargetingRule]:
    return list(feature.rules.select_related("segment").order_by("position"))


def _same_rules(feature: Feature, rules: list[tuple[Segment, object]]) -> bool:
    current = [(rule.segment_id, rule.value) for rule in _rules(feature)]
    try:
        wanted = [(segment.pk, clean_value(feature, value)) for segment, value in rules]
    except (DjangoValidationError, TypeError):  # a value that does not fit: the service says why
        return False
    return current == wanted


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
        return self._write(request, key, partial=False)

    @extend_schema(
        request=ItemIn,
        responses=ItemOut,
        operation_id="items_patch",
        examples=[body_example("Grace period", {"grace_days": 21})],
    )
    def patch(self, request, key: str):
        return self._write(request, key, partial=True)

    def _write(self, request, key: str, *, partial: bool):
        body = ItemIn(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        who = self.who()
        with transaction.atomic():
            item, before = locked(Item.objects, partial=partial, missing=f"No item {key}.", key=key)
            created = item is None
            item = item or Item(key=key)
            assign(item, body.validated_data)
            if is_noop(item, before):
                permissions.require_catalog_perm(who["actor"], "change", "item")
            else:
                services.item_save(item=item, **who)
        return Response(ItemOut(_item(key)).data, status=status.HTTP_201_CREATED if created else 200)


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
        body = SupersedeIn(data=request.data)
        body.is_valid(raise_exception=True)
        item = _item(key)
        who = self.who()
        permissions.require_catalog_perm(who["actor"], "add", "item")
        new_key = body.validated_data["new_key"]
        if Item.objects.filter(key=new_key).exists():
            raise Conflict(f"An item with the key {new_key} already exists.")
        successor = services.item_supersede(
            item=item, new_key=new_key, new_name=body.validated_data.get("new_name", ""), **who
        )
        return Response(ItemOut(_item(successor.key)).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[
        path_parameter("item_key", "The item's key.", "business"),
        path_parameter("feature_key", "The feature's key.", "max-members"),
    ]
)
class ItemEntitlementView(ApiView):
    """The value of one feature that one item gives. PUT sets it (applying at once to every
    subscription on the item); DELETE takes the feature out of the item."""

    def _pair(self, item_key: str, feature_key: str) -> tuple[Item, Feature]:
        item = Item.objects.filter(key=item_key).first()
        if item is None:
            raise NotFound(f"No item {item_key}.")
        feature = Feature.objects.filter(key=feature_key).first()
        if feature is None:
            raise NotFound(f"No feature {feature_key}.")
        return item, feature

    def _entitlement(self, item: Item, feature: Feature) -> Entitlement:
        entitlement = (
            Entitlement.objects.select_related("item", "feature").filter(item=item, feature=feature).first()
        )
        if entitlement is None:
            raise NotFound(f"{item.key} gives no {feature.key}.")
        return entitlement

    @extend_schema(responses=EntitlementOut, operation_id="items_entitlements_retrieve")
    def get(self, request, item_key: str, feature_key: str):
        return Response(EntitlementOut(self._entitlement(*self._pair(item_key, feature_key))).data)

    @extend_schema(
        request=EntitlementIn,
        responses={200: EntitlementOut, 201: EntitlementOut},
        examples=[body_example("25 members", {"value": 25})],
        operation_id="items_entitlements_put",
    )
    def put(self, request, item_key: str, feature_key: str):
        body = EntitlementIn(data=request.data)
        body.is_valid(raise_exception=True)
        value = body.validated_data["value"]
        who = self.who()
        with transaction.atomic():
            item, feature = self._pair(item_key, feature_key)
            current = Entitlement.objects.select_for_update().filter(item=item, feature=feature).first()
            created = current is None
            if current is not None:
                before = stored_values(current)
                current.value = value
                if is_noop(current, before):
                    permissions.require_catalog_perm(who["actor"], "change", "entitlement")
                    return Response(EntitlementOut(current).data)
            entitlement = services.entitlement_set(item=item, feature=feature, value=value, **who)
        return Response(EntitlementOut(entitlement).data, status=status.HTTP_201_CREATED if created else 200)

    @extend_schema(responses={204: None}, operation_id="items_entitlements_delete")
    def delete(self, request, item_key: str, feature_key: str):
        entitlement = self._entitlement(*self._pair(item_key, feature_key))
        services.entitlement_remove(entitlement=entitlement, **self.who())
        return Response(status=status.HTTP_204_NO_CONTENT)
