"""Segment endpoints (docs/api.md). A PUT or PATCH is `put_segment`, a call of
`segments.services.segment_put`, which touches only what differs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog.models import Tag
from segments import services
from segments.api.serializers import SegmentIn, SegmentOut
from segments.models import Segment
from subscriptions.models import Customer
from toolkit.rest.schema import body_example, path_parameter
from toolkit.rest.views import ApiListView, ApiView, ListQuery, Write

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
        return self._write(key)

    @extend_schema(
        request=SegmentIn,
        responses=SegmentOut,
        operation_id="segments_patch",
        examples=[body_example("Add to the list", {"included": ["acme", "contoso", "northwind"]})],
    )
    def patch(self, request, key: str):
        return self._write(key)

    def _write(self, key: str):
        _, created = self.perform(key=key)
        return Response(SegmentOut(_segment(key)).data, status=status.HTTP_201_CREATED if created else 200)


def put_segment(data: dict, *, key: str, **who) -> tuple[Segment, bool]:
    values = dict(data)
    tag_keys = values.pop("tags", None)
    included, excluded = values.pop("included", None), values.pop("excluded", None)
    rules = values.pop("rules", None)
    tags = None
    if tag_keys is not None:
        found = {tag.key: tag for tag in Tag.objects.filter(key__in=set(tag_keys))}
        if set(tag_keys) - set(found):
            raise ValidationError({"tags": [f"Unknown tag {k}." for k in sorted(set(tag_keys) - set(found))]})
        tags = [found[k] for k in dict.fromkeys(tag_keys)]
    return services.segment_put(
        key=key,
        values=values,
        tags=tags,
        included=None if included is None else _customers("included", included),
        excluded=None if excluded is None else _customers("excluded", excluded),
        rules=None if rules is None else [[dict(c) for c in rule["conditions"]] for rule in rules],
        **who,
    )


SegmentDetailView.writes = {
    "PUT": Write(SegmentIn, put_segment, partial=False),
    "PATCH": Write(SegmentIn, put_segment, partial=True),
}
