"""Import and export of segment lists: the customers listed in a segment as included or
excluded (see audit.imports). Rows are written by `segments.services`, so only those who may
change a segment (its tags decide) may change its lists."""

from __future__ import annotations

from import_export.fields import Field

from audit.imports.cells import lookup
from audit.imports.resources import ServiceResource
from catalog.permissions import prefetch_object_permissions
from segments import services
from segments.models import Segment, SegmentMember
from segments.permissions import CHANGE_SEGMENT
from subscriptions.models import Customer


class SegmentListResource(ServiceResource):
    """One customer on one segment's list, by segment key and customer external id. A row
    with `delete` true takes the customer off the segment's lists."""

    title = "Segment lists (included and excluded customers)"
    key_columns = ("segment", "customer")
    deletable = True
    parents = {Segment: "segment__in"}
    field_columns = {"kind": "list"}
    column_help = {
        "segment": "The segment's key.",
        "customer": "The customer's external id.",
        "list": "included (always in the segment) or excluded (never matched by its rules).",
        "delete": "true to take the customer off the segment's lists (optional column).",
    }

    segment = Field()
    customer = Field()
    list = Field()
    delete = Field()

    class Meta:
        model = SegmentMember

    def prepare(self, rows):
        keys = {row["segment"] for row in rows}
        ids = {row["customer"] for row in rows}
        segments = Segment.objects.filter(key__in=keys)
        self.segments = {segment.key: segment for segment in segments}
        self.customers = {
            customer.external_id: customer for customer in Customer.objects.filter(external_id__in=ids)
        }
        self.existing = {
            (member.segment_id, member.customer_id): member
            for member in SegmentMember.objects.filter(segment__key__in=keys, customer__external_id__in=ids)
        }
        prefetch_object_permissions(self.actor, CHANGE_SEGMENT, segments)

    def locate(self, cells):
        segment = lookup(self.segments, cells["segment"], "segment", "segment")
        customer = lookup(self.customers, cells["customer"], "customer", "customer")
        member = self.existing.get((segment.pk, customer.pk)) or SegmentMember()
        member.segment, member.customer = segment, customer
        return member

    def assign(self, member: SegmentMember, cells: dict[str, str]) -> None:
        if "list" in self.present:
            member.kind = cells["list"].lower()

    def render(self, member: SegmentMember) -> dict[str, object]:
        return {"segment": member.segment.key, "customer": member.customer.external_id, "list": member.kind}

    def save(self, member: SegmentMember, changed: set[str]) -> None:
        services.segment_part_save(part=member, **self.who())

    def remove(self, member: SegmentMember) -> None:
        services.segment_part_delete(part=member, **self.who())

    def export_queryset(self, queryset):
        return queryset.select_related("segment", "customer")
