"""Admin for segments: their rules (conditions grouped by rule number) and explicit lists."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from unfold.widgets import UnfoldAdminTextInputWidget

from audit.admin_base import AuditedModelAdmin
from audit.imports.admin import AuditedImportExportMixin
from catalog import permissions as catalog_permissions
from catalog.admin import CatalogInline, ObjectPermissionAdmin, inlines_for_page
from segments import permissions, services
from segments.models import Condition, Segment, SegmentGroupPermission, SegmentMember, SegmentUserPermission
from segments.resources import SegmentListResource


class ConditionForm(forms.ModelForm):
    value = forms.CharField(
        widget=UnfoldAdminTextInputWidget,
        help_text="A text or a number; for “is one of”, several separated by commas (DE, FR).",
    )

    class Meta:
        model = Condition
        fields = ["rule", "attribute", "op", "value"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            value = self.instance.value
            self.initial["value"] = ", ".join(map(str, value)) if isinstance(value, list) else value

    def clean(self):
        cleaned = super().clean()
        text = (cleaned.get("value") or "").strip()
        if cleaned.get("op") in ("in", "not_in"):
            value: object = [_scalar(part.strip()) for part in text.split(",") if part.strip()]
        else:
            value = _scalar(text)
        cleaned["value"] = value
        self.instance.value = value
        return cleaned


def _scalar(text: str) -> object:
    """A number stays a number (plan_rank gte 10); anything else is text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float) and not isinstance(value, bool) else text


class SegmentChildInline(CatalogInline):
    """An inline edited by whoever may change the parent segment (tags decide, per object)."""

    def has_add_permission(self, request, obj=None):
        return (
            permissions.can_change_segment(request.user, obj)
            if obj
            else super().has_add_permission(request, obj)
        )

    def has_change_permission(self, request, obj=None):
        return (
            permissions.can_change_segment(request.user, obj)
            if obj
            else super().has_change_permission(request, obj)
        )

    def has_delete_permission(self, request, obj=None):
        return (
            permissions.can_change_segment(request.user, obj)
            if obj
            else super().has_delete_permission(request, obj)
        )


class ConditionInline(SegmentChildInline):
    model = Condition
    form = ConditionForm
    extra = 0
    verbose_name_plural = "Rules (conditions with the same rule number must all hold; any rule may match)"


class SegmentMemberInline(SegmentChildInline):
    model = SegmentMember
    extra = 0
    per_page = 25
    autocomplete_fields = ["customer"]
    verbose_name_plural = "Listed customers (included always; excluded never matched by rules)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "segment")


@admin.register(Segment)
class SegmentAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    resource_classes = [SegmentListResource]
    schedule_path = "/api/v1/segments/{obj.key}"
    schedule_fields = ("name", "description", "tags")
    list_display = ["key", "name", "included_count", "excluded_count", "rule_count", "tag_list"]
    list_filter = ["tags"]
    search_fields = ["key", "name", "description"]
    ordering = ["key"]  # as the model orders: the counts in get_queryset drop Meta.ordering
    autocomplete_fields = ["tags"]  # a searchable box: fits the page, unlike two side-by-side lists
    inlines = [ConditionInline, SegmentMemberInline]
    fields = ["key", "name", "description", "tags"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("tags")
            .annotate(
                included_total=Count("members", filter=Q(members__kind="included"), distinct=True),
                excluded_total=Count("members", filter=Q(members__kind="excluded"), distinct=True),
                rule_total=Count("conditions__rule", distinct=True),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = ["key"] if obj else []
        if not catalog_permissions.has(request.user, "catalog.change_tag"):
            readonly.append("tags")  # tags decide who may edit what: catalog admins move them
        return readonly

    def get_inline_instances(self, request, obj=None):
        return inlines_for_page(request, obj, super().get_inline_instances(request, obj))

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return permissions.may_change_some_segment(request.user)
        return permissions.can_change_segment(request.user, obj)

    @admin.display(description="Included")
    def included_count(self, obj):
        return obj.included_total

    @admin.display(description="Excluded")
    def excluded_count(self, obj):
        return obj.excluded_total

    @admin.display(description="Rules")
    def rule_count(self, obj):
        return obj.rule_total

    @admin.display(description="Tags")
    def tag_list(self, obj):
        return ", ".join(tag.key for tag in obj.tags.all())

    def save_object(self, request, obj, form, reason):
        services.segment_save(
            segment=obj,
            tags=form.cleaned_data.get("tags") if "tags" in form.cleaned_data else None,
            actor=request.user,
            reason=reason,
            source="admin",
        )

    def delete_object(self, request, obj, reason):
        raise ValidationError("Segments used by targeting rules cannot be deleted.")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_inline(self, request, obj, reason):
        services.segment_part_save(part=obj, actor=request.user, reason=reason, source="admin")

    def delete_inline(self, request, obj, reason):
        services.segment_part_delete(part=obj, actor=request.user, reason=reason, source="admin")


@admin.register(SegmentUserPermission)
class SegmentUserPermissionAdmin(ObjectPermissionAdmin):
    grantee = "user"
    codenames = ("change_segment",)


@admin.register(SegmentGroupPermission)
class SegmentGroupPermissionAdmin(ObjectPermissionAdmin):
    grantee = "group"
    codenames = ("change_segment",)
