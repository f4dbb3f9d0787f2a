"""Import and export of the catalog: features, items, and the entitlements items give
(see audit.imports). Rows are written by `catalog.services`."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from import_export.fields import Field

from audit.imports.cells import lookup, parse_bool, parse_int, render_bool, split_list
from audit.imports.resources import ServiceResource
from catalog import services
from catalog.forms import parse_levels
from catalog.models import Entitlement, Feature, Item, Tag
from catalog.permissions import CHANGE_FEATURE, prefetch_object_permissions
from catalog.values import clean_value


def render_levels(levels: list[object]) -> str:
    """`5, 10, 20` as the admin's form shows them, or JSON when a level would not read back
    as itself from that (a comma inside, a custom level made of digits)."""
    plain = all(
        isinstance(level, int) or ("," not in level and level == level.strip() and not level.isdigit())
        for level in levels
    )
    return ", ".join(str(level) for level in levels) if plain else json.dumps(levels)


def value_text(value: object) -> object:
    """An entitlement's or override's value as a cell: `true`, a number, `unlimited`, a level."""
    if isinstance(value, bool):
        return render_bool(value)
    return "" if value is None else value


def clean_feature_value(feature: Feature, text: str, column: str = "value") -> object:
    try:
        return clean_value(feature, text)
    except ValidationError as error:
        raise ValidationError({column: error.messages}) from None


METERING = ("period", "period_anchor", "limit_type")


class FeatureResource(ServiceResource):
    """Features by key. Tags are the tag keys, comma-separated; changing them is for catalog
    admins, as on the feature's page."""

    title = "Features"
    key_columns = ("key",)
    column_help = {
        "key": "The feature's key (never changes once created).",
        "kind": "switch, quantity, range, custom or metered.",
        "levels": "Quantity: 5, 10, 20. Custom: the levels, lowest first (email, email+chat).",
        "min_value": "Range features: the lowest value.",
        "max_value": "Range features: the highest value.",
        "allow_unlimited": "Quantity and metered features: true or false.",
        "period": "Metered features: day, week, month or year. Empty for other kinds.",
        "period_anchor": "Metered features: calendar or billing_cycle. Empty for other kinds.",
        "limit_type": "Metered features: hard (refused beyond the limit) or soft (allowed and "
        "reported). Empty for other kinds.",
        "markets": "Country codes, comma-separated (GB, IE); empty means everywhere.",
        "status": "active or archived.",
        "fallback": "deny, allow or last_known.",
        "tags": "Tag keys, comma-separated.",
    }

    key = Field()
    name = Field()
    description = Field()
    kind = Field()
    status = Field()
    levels = Field()
    min_value = Field()
    max_value = Field()
    allow_unlimited = Field()
    period = Field()
    period_anchor = Field()
    limit_type = Field()
    markets = Field()
    keep_when_delinquent = Field()
    fallback = Field()
    tags = Field()

    class Meta:
        model = Feature

    def prepare(self, rows):
        keys = {row["key"] for row in rows}
        features = Feature.objects.filter(key__in=keys)
        self.existing = {feature.key: feature for feature in features.prefetch_related("tags")}
        self.tags = {tag.key: tag for tag in Tag.objects.all()} if "tags" in self.present else {}
        prefetch_object_permissions(self.actor, CHANGE_FEATURE, features)

    def locate(self, cells):
        return self.existing.get(cells["key"]) or Feature(key=cells["key"])

    def assign(self, feature: Feature, cells: dict[str, str]) -> None:
        # period, period_anchor and limit_type are a metered feature's; the model clears them
        # for any other kind.
        for column in ("name", "description", "kind", "status", "fallback", *METERING):
            if column in self.present:
                setattr(feature, column, cells[column])
        if "levels" in self.present:
            try:
                levels = parse_levels(cells["levels"])
            except ValidationError as error:
                raise ValidationError({"levels": error.messages}) from None
            feature.levels = levels
        for column in ("min_value", "max_value"):
            if column in self.present:
                setattr(feature, column, parse_int(cells[column], column))
        for column in ("allow_unlimited", "keep_when_delinquent"):
            if column in self.present:
                setattr(feature, column, parse_bool(cells[column], column))
        if "markets" in self.present:
            feature.markets = [code.upper() for code in split_list(cells["markets"])]
        if "tags" in self.present:
            feature._import_tags = [
                lookup(self.tags, key, "tags", "tag") for key in split_list(cells["tags"])
            ]

    def render(self, feature: Feature) -> dict[str, object]:
        if hasattr(feature, "_import_tags"):
            tags = feature._import_tags
        else:
            tags = list(feature.tags.all()) if feature.pk else []
        return {
            "key": feature.key,
            "name": feature.name,
            "description": feature.description,
            "kind": feature.kind,
            "status": feature.status,
            "levels": render_levels(feature.levels or []),
            "min_value": feature.min_value,
            "max_value": feature.max_value,
            "allow_unlimited": render_bool(feature.allow_unlimited),
            "period": feature.period,
            "period_anchor": feature.period_anchor,
            "limit_type": feature.limit_type,
            "markets": ", ".join(sorted(country.code for country in feature.markets)),
            "keep_when_delinquent": render_bool(feature.keep_when_delinquent),
            "fallback": feature.fallback,
            "tags": ", ".join(sorted(tag.key for tag in tags)),
        }

    def save(self, feature: Feature, changed: set[str]) -> None:
        services.feature_save(feature=feature, tags=getattr(feature, "_import_tags", None), **self.who())

    def export_queryset(self, queryset):
        return queryset.prefetch_related("tags")


class ItemResource(ServiceResource):
    """Plans, add-ons and charges by key. Superseding is not an import: use its action."""

    title = "Plans, add-ons and charges"
    key_columns = ("key",)
    column_help = {
        "key": "The item's key.",
        "kind": "plan, addon or charge.",
        "status": "active, legacy or archived.",
        "rank": "Plans: a higher rank is a higher tier.",
        "grace_days": "Plans: days an unpaid subscription keeps full access.",
        "external_id": "The billing system's id (may be empty).",
    }

    key = Field()
    kind = Field()
    name = Field()
    status = Field()
    rank = Field()
    grace_days = Field()
    external_id = Field()

    class Meta:
        model = Item

    def prepare(self, rows):
        self.existing = {item.key: item for item in Item.objects.filter(key__in={row["key"] for row in rows})}

    def locate(self, cells):
        return self.existing.get(cells["key"]) or Item(key=cells["key"])

    def assign(self, item: Item, cells: dict[str, str]) -> None:
        for column in ("kind", "name", "status", "external_id"):
            if column in self.present:
                setattr(item, column, cells[column])
        for column in ("rank", "grace_days"):
            if column in self.present:
                setattr(item, column, parse_int(cells[column], column) or 0)

    def render(self, item: Item) -> dict[str, object]:
        return {
            "key": item.key,
            "kind": item.kind,
            "name": item.name,
            "status": item.status,
            "rank": item.rank,
            "grace_days": item.grace_days,
            "external_id": item.external_id,
        }

    def save(self, item: Item, changed: set[str]) -> None:
        services.item_save(item=item, **self.who())


class EntitlementResource(ServiceResource):
    """What each item gives: (item key, feature key) → value, typed as on the item's page.
    A row with `delete` true takes the feature out of the item."""

    title = "Entitlements (item → feature → value)"
    key_columns = ("item", "feature")
    deletable = True
    parents = {Item: "item__in", Feature: "feature__in"}
    column_help = {
        "item": "The plan, add-on or charge, by key.",
        "feature": "The feature, by key.",
        "value": "true for a switch; a level or unlimited for a quantity; a number for a range; "
        "a level for a custom feature; the limit per period for a metered feature (a whole "
        "number, or unlimited where allowed).",
        "delete": "true to take the feature out of the item (optional column).",
    }

    item = Field()
    feature = Field()
    value = Field()
    delete = Field()

    class Meta:
        model = Entitlement

    def prepare(self, rows):
        item_keys = {row["item"] for row in rows}
        feature_keys = {row["feature"] for row in rows}
        self.items = {item.key: item for item in Item.objects.filter(key__in=item_keys)}
        self.features = {feature.key: feature for feature in Feature.objects.filter(key__in=feature_keys)}
        self.existing = {
            (entitlement.item_id, entitlement.feature_id): entitlement
            for entitlement in Entitlement.objects.filter(
                item__key__in=item_keys, feature__key__in=feature_keys
            )
        }

    def locate(self, cells):
        item = lookup(self.items, cells["item"], "item", "item")
        feature = lookup(self.features, cells["feature"], "feature", "feature")
        entitlement = self.existing.get((item.pk, feature.pk)) or Entitlement()
        entitlement.item, entitlement.feature = item, feature  # loaded already: no query to name them
        return entitlement

    def assign(self, entitlement: Entitlement, cells: dict[str, str]) -> None:
        if "value" in self.present:
            entitlement.value = clean_feature_value(entitlement.feature, cells["value"])

    def render(self, entitlement: Entitlement) -> dict[str, Any]:
        return {
            "item": entitlement.item.key,
            "feature": entitlement.feature.key,
            "value": value_text(entitlement.value),
        }

    def save(self, entitlement: Entitlement, changed: set[str]) -> None:
        services.entitlement_save(entitlement=entitlement, **self.who())

    def remove(self, entitlement: Entitlement) -> None:
        services.entitlement_remove(entitlement=entitlement, **self.who())

    def export_queryset(self, queryset):
        return queryset.select_related("item", "feature")
