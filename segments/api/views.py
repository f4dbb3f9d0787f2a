"""Segment endpoints (docs/api.md). A PUT touches only what differs: the segment's own fields
and tags, its lists, its rules — each through `segments.services` as the key's owner, in one
transaction; a PUT that changes nothing only checks the permission."""

from __future__ import annotations

import json

import orjson
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog.models import Tag
from segments import permissions, services
from segments.api.serializers import SegmentIn, SegmentOut
from segments.models import Segment
from subscriptions.models import Customer
from toolkit.rest.schema import body_example, path_parameter
from toolkit.rest.views import ApiListView, ApiView, ListQuery
from toolkit.upsert import assign, is_noop, locked

SEGMENT_KEY = path_parameter("key", "The segment's key.", "beta")


def _segments():
    return Segment.objects.prefetch_related("tags", "members__customer", "conditions")


def _segment(key: str) -> Segment:
    segment = _segments().filter(key=key).first()
    if segment is None:
        raise NotFound(f"No segment {key}.")
    return segment


def _customers(field: str, external_ids: list[str]) -> list[Customer]:
    found = {c.external_id: c for c in Customer.objects.filter(external_id__in=set(external_ids))}
    unknown = sorted(set(external_ids) - set(found))
    if unknown:
        raise ValidationError({field: [f"Unknown customer {external_id}." for external_id in unknown[:20]]})
    return [found[external_id] for external_id in dict.fromkeys(external_ids)]


def _canonical(value) -> bytes:
    """A condition's value as canonical JSON; the standard library writes what orjson cannot
    (an integer beyond 64 bits stored before the API refused them), so such a rule can be
    replaced."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _signature(rules) -> list[tuple]:
    """Rules as comparable data: (rule number, attribute, op, value as canonical JSON)."""
    return sorted(
        (number, c["attribute"], c["op"], _canonical(c["value"]))
        for number, conditions in enumerate(rules, start=1)
        for c in conditions
    )


def _current_rules(segment: Segment) -> list[list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for c in segment.conditions.order_by("rule", "id"):
        grouped.setdefault(c.rule, []).append({"attribute": c.attribute, "op": c.op, "value": c.value})
    return [conditions for _, conditions in sorted(grouped.items())]


class SegmentQuery(ListQuery):
    tag = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Only segments with this tag."
    )


@extend_schema(parameters=[SegmentQuery])
class SegmentListView(ApiListView):
    """Every segment, by key."""

    serializer_class = SegmentOut
    cursor_ordering = "key"
    query_class = SegmentQuery

    def get_queryset(self):
        segments = _segments()
        if "tag" in self.query:
            segments = segments.filter(tags__key=self.query["tag"])
        return segments


@extend_schema(parameters=[SEGMENT_KEY])
class SegmentDetailView(ApiView):
    """One segment. PUT creates or replaces it; PATCH changes the parts given."""

    @extend_schema(responses=SegmentOut, operation_id="segments_retrieve")
    def get(self, request, key: str):
        return Response(SegmentOut(_segment(key)).data)

    @extend_schema(
        request=SegmentIn,
        responses={200: SegmentOut, 201: SegmentOut},
        operation_id="segments_put",
        examples=[
            body_example(
                "Beta users",
                {
                    "name": "Common beta users",
                    "tags": ["product"],
                    "included": ["acme", "contoso"],
                    "rules": [{"conditions": [{"attribute": "country", "op": "in", "value": ["DE", "FR"]}]}],
                },
            )
        ],
    )
    def put(self, request, key: str):
        return self._write(request, key, partial=False)

    @extend_schema(
        request=SegmentIn,
        responses=SegmentOut,
        operation_id="segments_patch",
        examples=[body_example("Add to the list", {"included": ["acme", "contoso", "northwind"]})],
    )
    def patch(self, request, key: str):
        return self._write(request, key, partial=True)

    def _write(self, request, key: str, *, partial: bool):
        body = SegmentIn(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        tag_keys = values.pop("tags", None)
        included, excluded = values.pop("included", None), values.pop("excluded", None)
        rules = values.pop("rules", None)
        rules = None if rules is None else [[dict(c) for c in rule["conditions"]] for rule in rules]
        tags = None
        if tag_keys is not None:
            found = {tag.key: tag for tag in Tag.objects.filter(key__in=set(tag_keys))}
            if set(tag_keys) - set(found):
                raise ValidationError(
                    {"tags": [f"Unknown tag {k}." for k in sorted(set(tag_keys) - set(found))]}
                )
            tags = [found[k] for k in dict.fromkeys(tag_keys)]
        included = None if included is None else _customers("included", included)
        excluded = None if excluded is None else _customers("excluded", excluded)
        who = self.who()
        with transaction.atomic():
            segment, before = locked(Segment.objects, partial=partial, missing=f"No segment {key}.", key=key)
            created = segment is None
            segment = segment or Segment(key=key)
            if (
                tags is not None
                and not created
                and {t.pk for t in tags} == {t.pk for t in segment.tags.all()}
            ):
                tags = None
            assign(segment, values)
            wrote = False
            if created or tags is not None or not is_noop(segment, before):
                services.segment_save(segment=segment, tags=tags, **who)
                wrote = True
            if included is not None or excluded is not None:
                members = list(segment.members.all()) if not created else []
                now_in = {m.customer_id for m in members if m.kind == "included"}
                now_out = {m.customer_id for m in members if m.kind == "excluded"}
                new_in = now_in if included is None else {c.pk for c in included}
                new_out = now_out if excluded is None else {c.pk for c in excluded}
                if (new_in, new_out) != (now_in, now_out):
                    by_pk = {m.customer_id: m.customer for m in segment.members.select_related("customer")}
                    by_pk.update({c.pk: c for c in (included or []) + (excluded or [])})
                    services.segment_set_lists(
                        segment=segment,
                        included=[by_pk[pk] for pk in new_in],
                        excluded=[by_pk[pk] for pk in new_out],
                        **who,
                    )
                    wrote = True
            if rules is not None and _signature(rules) != _signature(
                [] if created else _current_rules(segment)
            ):
                services.segment_set_rules(segment=segment, rules=rules, **who)
                wrote = True
            if not wrote:
                permissions.require_change_segment(who["actor"], segment)
        return Response(SegmentOut(_segment(key)).data, status=status.HTTP_201_CREATED if created else 200)
