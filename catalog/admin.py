"""Admin for the catalog: features (with their targeting rules), plans, add-ons and charges
(with their entitlements), and tags. Every save goes through `catalog.services`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.admin import TabularInline
from unfold.decorators import action
from unfold.widgets import UnfoldAdminTextInputWidget

from audit.admin_base import (
    REASON_FIELD,
    SCHEDULE_FIELD,
    AuditedModelAdmin,
    AuditedModelForm,
    reason_field,
)
from audit.imports.admin import AuditedImportExportMixin
from catalog import permissions, services
from catalog.forms import FeatureValueFormMixin, LevelsField, MarketsField, ValueField
from catalog.models import Entitlement, Feature, FeatureGroupPermission, FeatureUserPermission, Item, Tag
from catalog.resources import EntitlementResource, FeatureResource, ItemResource
from catalog.values import display_value
from reporting.admin import FeatureReportingTab
from segments import services as segment_services
from segments.models import TargetingRule
from toolkit.change_context import normalize_reason


class FeatureForm(AuditedModelForm):
    levels = LevelsField()
    markets = MarketsField()

    class Meta:
        model = Feature
        fields = "__all__"


class TargetingRuleForm(FeatureValueFormMixin, forms.ModelForm):
    value = ValueField(label="Value served")

    class Meta:
        model = TargetingRule
        fields = ["position", "segment", "value"]


class CatalogInline(TabularInline):
    """The catalog's and segments' tables: a row is labelled by its own cells, not by a title
    line repeating them above."""

    hide_title = True


def inlines_for_page(request, obj, inlines):
    """On an add page, only the tables the user may add rows to: an empty read-only table
    there says nothing."""
    if obj is not None:
        return inlines
    return [inline for inline in inlines if inline.has_add_permission(request, obj)]


class FeatureChildInline(CatalogInline):
    """An inline of a feature's targeting rules: edited by whoever may change them (tags
    decide, per object), even without the right to change the feature's definition."""

    def has_add_permission(self, request, obj=None):
        return (
            permissions.can_change_feature_rules(request.user, obj)
            if obj
            else super().has_add_permission(request, obj)
        )

    def has_change_permission(self, request, obj=None):
        return (
            permissions.can_change_feature_rules(request.user, obj)
            if obj
            else super().has_change_permission(request, obj)
        )

    def has_delete_permission(self, request, obj=None):
        return (
            permissions.can_change_feature_rules(request.user, obj)
            if obj
            else super().has_delete_permission(request, obj)
        )


class TargetingRuleInline(FeatureChildInline):
    model = TargetingRule
    form = TargetingRuleForm
    extra = 0
    autocomplete_fields = ["segment"]
    ordering = ["position"]
    verbose_name = "targeting rule"
    verbose_name_plural = "Targeting rules (first matching segment wins)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("segment", "feature")


# What a feature is, as opposed to its targeting rules (catalog.permissions).
DEFINITION_FIELDS = [
    "name",
    "description",
    "kind",
    "status",
    "tags",
    "levels",
    "min_value",
    "max_value",
    "allow_unlimited",
    "period",
    "period_anchor",
    "limit_type",
    "markets",
    "keep_when_delinquent",
    "fallback",
]


@admin.register(Feature)
class FeatureAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    form = FeatureForm
    resource_classes = [FeatureResource]
    schedule_path = "/api/v1/features/{obj.key}"
    schedule_fields = tuple(DEFINITION_FIELDS)  # what the API's PATCH of a feature takes
    list_display = ["key", "name", "kind", "status", "markets_display", "fallback", "tag_list"]
    list_filter = ["kind", "status", "tags", "keep_when_delinquent", "fallback"]
    search_fields = ["key", "name", "description"]
    inlines = [TargetingRuleInline]
    change_form_datasets = [FeatureReportingTab]  # the "Reporting" tab (reporting.admin)
    autocomplete_fields = ["tags"]  # a searchable box: fits the page, unlike two side-by-side lists
    fieldsets = [
        (None, {"fields": ["key", "name", "description", "kind", "status", "tags"]}),
        ("Levels", {"fields": ["levels", "min_value", "max_value", "allow_unlimited"]}),
        (
            "Metering",
            {
                "fields": ["period", "period_anchor", "limit_type"],
                "description": "Metered features only: a plan's value is then its usage limit per "
                "period. Leave these empty for every other kind.",
            },
        ),
        ("Availability", {"fields": ["markets", "keep_when_delinquent", "fallback"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not permissions.can_change_feature_definition(request.user, obj):
            # Product: the targeting rules below are theirs, what the feature is is not.
            return ["key", *DEFINITION_FIELDS]
        readonly = ["key"] if obj else []
        if not permissions.has(request.user, "catalog.change_tag"):
            readonly.append("tags")  # tags decide who may edit what: catalog admins move them
        return readonly

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not permissions.can_change_feature_definition(request.user, obj):
            # Nothing of the feature itself to schedule: the rules below are saved now.
            fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f != SCHEDULE_FIELD]})
                for name, options in fieldsets
            ]
        return fieldsets

    def get_inline_instances(self, request, obj=None):
        return inlines_for_page(request, obj, super().get_inline_instances(request, obj))

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return permissions.may_change_some_feature(request.user)
        return permissions.can_change_feature_rules(request.user, obj)

    def get_search_results(self, request, queryset, search_term):
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        if request.GET.get("model_name") == "override" and request.GET.get("field_name") == "feature":
            # Autocomplete for an override offers only the features this user may grant.
            queryset = queryset.filter(pk__in=permissions.features_grantable_by(request.user).values("pk"))
        return queryset, distinct

    @admin.display(description="Markets")
    def markets_display(self, obj):
        return ", ".join(str(code) for code in obj.markets) or "everywhere"

    @admin.display(description="Tags")
    def tag_list(self, obj):
        return ", ".join(tag.key for tag in obj.tags.all())

    def save_object(self, request, obj, form, reason):
        # Saved even when only its rules changed: the service then asks only for the right
        # to edit the rules, and records nothing for the unchanged feature.
        services.feature_save(
            feature=obj,
            tags=form.cleaned_data.get("tags") if "tags" in form.cleaned_data else None,
            actor=request.user,
            reason=reason,
            source="admin",
        )

    def delete_object(self, request, obj, reason):
        raise ValidationError("Archive a feature instead of deleting it: applications depend on its key.")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_inline(self, request, obj, reason):
        segment_services.targeting_rule_save(rule=obj, actor=request.user, reason=reason, source="admin")

    def delete_inline(self, request, obj, reason):
        segment_services.targeting_rule_delete(rule=obj, actor=request.user, reason=reason, source="admin")


def limit_or_value(feature: Feature, value: object) -> str:
    """A value as a list shows it; a metered feature's limit reads with its period and its
    thousands marked ("10,000 per month"), so a limit cannot pass for a level."""
    if feature.is_metered and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,} per {feature.period}"
    return display_value(value)


class EntitlementForm(FeatureValueFormMixin, forms.ModelForm):
    value = ValueField()

    class Meta:
        model = Entitlement
        fields = ["feature", "value"]


class EntitlementInline(CatalogInline):
    model = Entitlement
    form = EntitlementForm
    extra = 0
    autocomplete_fields = ["feature"]
    verbose_name_plural = "Entitlements (what this item gives)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("feature", "item")


class SupersedeForm(forms.Form):
    new_key = forms.SlugField(
        label="Key of the new plan",
        max_length=64,
        widget=UnfoldAdminTextInputWidget,
        help_text="For example business-2027. The current plan becomes legacy: its subscribers keep it.",
    )
    new_name = forms.CharField(
        required=False,
        max_length=200,
        widget=UnfoldAdminTextInputWidget,
        help_text="Leave empty to name it after the current plan and the new key, e.g. "
        "“Business (business-2027)”, so the two plans can be told apart.",
    )
    change_reason = reason_field()

    def clean_change_reason(self):
        reason = normalize_reason(self.cleaned_data.get(REASON_FIELD))
        if not reason:
            raise ValidationError("Say why this change is made.")
        return reason


@admin.register(Item)
class ItemAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    resource_classes = [ItemResource, EntitlementResource]
    list_display = [
        "key",
        "name",
        "kind",
        "status",
        "rank",
        "grace_days",
        "entitlement_count",
        "superseded_by",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["key", "name", "external_id"]
    ordering = ["kind", "rank", "key"]  # as the model orders: the Count in get_queryset drops Meta.ordering
    list_select_related = ["superseded_by"]
    inlines = [EntitlementInline]
    actions = ["supersede"]
    actions_detail = ["supersede_detail"]
    readonly_fields = ["superseded_by"]
    fields = ["key", "kind", "name", "status", "rank", "grace_days", "external_id", "superseded_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(entitlement_total=Count("entitlements"))

    def get_inline_instances(self, request, obj=None):
        return inlines_for_page(request, obj, super().get_inline_instances(request, obj))

    @admin.display(description="Features", ordering="entitlement_total")
    def entitlement_count(self, obj):
        return obj.entitlement_total

    def get_urls(self):
        return [
            path(
                "<int:pk>/supersede/",
                self.admin_site.admin_view(self.supersede_view),
                name="catalog_item_supersede",
            ),
            *super().get_urls(),
        ]

    @admin.action(
        description="Supersede the selected plan (copy to a new key, old one legacy)",
        permissions=["supersede"],
    )
    def supersede(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one plan to supersede.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:catalog_item_supersede", args=[queryset.get().pk]))

    @action(description="Supersede", url_path="supersede-detail", permissions=["supersede"])
    def supersede_detail(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:catalog_item_supersede", args=[object_id]))

    def has_supersede_permission(self, request, object_id=None):
        return self.has_add_permission(request) and self.has_change_permission(request)

    def supersede_view(self, request, pk):
        item = get_object_or_404(Item, pk=pk)
        if not self.has_supersede_permission(request):
            raise PermissionDenied
        form = SupersedeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                successor = services.item_supersede(
                    item=item,
                    new_key=form.cleaned_data["new_key"],
                    new_name=form.cleaned_data["new_name"],
                    actor=request.user,
                    reason=form.cleaned_data[REASON_FIELD],
                    source="admin",
                )
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
            else:
                self.message_user(
                    request, f"{item.key} is now legacy; new subscriptions go on {successor.key}."
                )
                return HttpResponseRedirect(reverse("admin:catalog_item_change", args=[successor.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Supersede {item.key}",
            "opts": self.model._meta,
            "original": item,
            "form": form,
        }
        return TemplateResponse(request, "admin/catalog/item/supersede.html", context)

    def save_object(self, request, obj, form, reason):
        services.item_save(item=obj, actor=request.user, reason=reason, source="admin")

    def delete_object(self, request, obj, reason):
        raise ValidationError("Archive an item instead of deleting it.")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_inline(self, request, obj, reason):
        services.entitlement_save(entitlement=obj, actor=request.user, reason=reason, source="admin")

    def delete_inline(self, request, obj, reason):
        services.entitlement_remove(entitlement=obj, actor=request.user, reason=reason, source="admin")


class EntitlementAdminForm(FeatureValueFormMixin, AuditedModelForm):
    value = ValueField()

    class Meta:
        model = Entitlement
        fields = ["item", "feature", "value"]


@admin.register(Entitlement)
class EntitlementAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    """All entitlements in one list, to answer "which plans give 4K?"."""

    form = EntitlementAdminForm
    resource_classes = [EntitlementResource]
    schedule_path = "/api/v1/items/{obj.item.key}/entitlements/{obj.feature.key}"

    def scheduled_request(self, obj, form):
        return "PUT", self.schedule_path.format(obj=obj), {"value": obj.value}

    list_display = ["item", "feature", "value_display"]
    list_filter = ["item__kind", "feature__kind", "feature__tags"]
    search_fields = ["item__key", "feature__key"]
    list_select_related = ["item", "feature"]
    autocomplete_fields = ["item", "feature"]

    @admin.display(description="Value")
    def value_display(self, obj):
        return limit_or_value(obj.feature, obj.value)

    def save_object(self, request, obj, form, reason):
        services.entitlement_save(entitlement=obj, actor=request.user, reason=reason, source="admin")

    def delete_object(self, request, obj, reason):
        services.entitlement_remove(entitlement=obj, actor=request.user, reason=reason, source="admin")


@admin.register(Tag)
class TagAdmin(AuditedModelAdmin):
    list_display = ["key", "name", "group_list"]
    search_fields = ["key", "name"]
    filter_horizontal = ["groups"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Groups that may edit")
    def group_list(self, obj):
        return ", ".join(group.name for group in obj.groups.all())

    def save_object(self, request, obj, form, reason):
        services.tag_save(
            tag=obj, groups=form.cleaned_data.get("groups"), actor=request.user, reason=reason, source="admin"
        )

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectPermissionAdmin(AuditedModelAdmin):
    """One-off object permissions (guardian rows): who may edit or grant one object.
    Only catalog admins hold the model permissions that reach these pages."""

    grantee: str = "user"
    codenames: tuple[str, ...] = ()
    # By codename: a filter on the permission itself would name every permission of the
    # site, each with a query for its content type.
    list_filter = ["permission__codename"]

    def get_list_display(self, request):
        extra = ["via_tags"] if self.grantee == "group" else []
        return ["content_object", self.grantee, "permission", *extra]

    def get_list_select_related(self, request):
        return ["content_object", self.grantee, "permission__content_type"]

    def get_search_fields(self, request):
        name = "username" if self.grantee == "user" else "name"
        return ["content_object__key", f"{self.grantee}__{name}"]

    def get_fields(self, request, obj=None):
        return ["content_object", self.grantee, "permission"]

    def get_autocomplete_fields(self, request):
        return ["content_object", self.grantee]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "permission":
            from django.contrib.auth.models import Permission

            target = self.model._meta.get_field("content_object").related_model
            kwargs["queryset"] = Permission.objects.filter(
                content_type__app_label=target._meta.app_label, codename__in=self.codenames
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        # A grant is made or withdrawn, never edited into another one.
        return obj is None and super().has_change_permission(request)

    def save_object(self, request, obj, form, reason):
        services.object_permission_save(row=obj, actor=request.user, reason=reason, source="admin")

    def delete_object(self, request, obj, reason):
        services.object_permission_delete(row=obj, actor=request.user, reason=reason, source="admin")


@admin.register(FeatureUserPermission)
class FeatureUserPermissionAdmin(ObjectPermissionAdmin):
    grantee = "user"
    codenames = ("change_feature", "grant_feature")


@admin.register(FeatureGroupPermission)
class FeatureGroupPermissionAdmin(ObjectPermissionAdmin):
    grantee = "group"
    codenames = ("change_feature", "grant_feature")
