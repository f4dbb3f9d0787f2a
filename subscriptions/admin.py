"""Admin for customers, subscriptions and overrides. The customer and subscription pages
show the resolved entitlements, which is what support looks at when a customer calls."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.decorators import action

from audit.admin_base import AuditedModelAdmin, AuditedModelForm, reason_action
from audit.imports import AuditedImportExportMixin
from catalog.forms import ValueField
from catalog.permissions import features_grantable_by
from catalog.values import display_value
from subscriptions import selectors, services
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from subscriptions.permissions import can_override
from subscriptions.resources import CustomerResource, OverrideResource, SubscriptionResource


def resolved_table(customer: Customer) -> str:
    """The customer's answers for every active feature, overrides apart from what is
    inherited from plans, add-ons and segments."""
    now = timezone.now()
    resolution = selectors.resolve_customer(customer, now=now)
    rows = sorted(resolution.answers.values(), key=lambda a: a.feature_key)
    explicit = [a for a in rows if a.source.startswith("override:")]
    inherited = [a for a in rows if not a.source.startswith("override:")]
    return render_to_string(
        "admin/subscriptions/resolved_entitlements.html",
        {
            "explicit": explicit,
            "inherited": inherited,
            "evaluated_at": now,
            "valid_until": resolution.valid_until,
        },
    )


def _resolved_table_once(obj, customer: Customer) -> str:
    """The table, computed once per page: unfold reads a read-only field's contents several
    times while rendering it, and each reading would resolve the customer again."""
    if not hasattr(obj, "_resolved_table"):
        obj._resolved_table = resolved_table(customer)
    return obj._resolved_table


def with_resolved_section(fieldsets: list, obj, title: str) -> list:
    """The resolved table in a section of its own, second on the page (and nowhere else)."""
    fieldsets = [
        (name, {**options, "fields": [f for f in options["fields"] if f != "resolved_entitlements"]})
        for name, options in fieldsets
    ]
    if obj is not None:
        fieldsets.insert(1, (title, {"fields": ["resolved_entitlements"]}))
    return fieldsets


class SubscriptionSummaryInline(TabularInline):
    """A customer's subscriptions, read-only here: each links to its own page."""

    model = Subscription
    fields = ["link", "plan", "status", "trial_ends_at", "current_period_end", "past_due_since"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "customer")

    @admin.display(description="Subscription")
    def link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:subscriptions_subscription_change", args=[obj.pk]),
            obj.external_id,
        )


class CustomerForm(AuditedModelForm):
    class Meta:
        model = Customer
        fields = ["external_id", "name", "country", "traits"]


@admin.register(Customer)
class CustomerAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    form = CustomerForm
    resource_classes = [CustomerResource]
    list_display = ["external_id", "name", "country_name", "created_at"]
    list_filter = ["country", "subscriptions__status", "subscriptions__plan"]
    search_fields = ["external_id", "name"]
    ordering = ["external_id"]
    inlines = [SubscriptionSummaryInline]
    readonly_fields = ["resolved_entitlements"]

    def get_fieldsets(self, request, obj=None):
        return with_resolved_section(super().get_fieldsets(request, obj), obj, "Resolved entitlements")

    def get_readonly_fields(self, request, obj=None):
        return ["external_id", "resolved_entitlements"] if obj else []

    @admin.display(description="What this customer has now")
    def resolved_entitlements(self, obj):
        return _resolved_table_once(obj, obj)

    @admin.display(description="Country", ordering="country")
    def country_name(self, obj):
        # Not the field itself: the admin would render it through CountryField.flatchoices,
        # which django-countries rebuilds (250 countries) for every row: half the page's time.
        return obj.country.name or obj.country.code or None

    def save_object(self, request, obj, form, reason):
        services.customer_save(customer=obj, actor=request.user, reason=reason, source="admin")

    def has_delete_permission(self, request, obj=None):
        return False


class AddonInline(TabularInline):
    model = SubscriptionAddon
    extra = 0
    autocomplete_fields = ["addon"]
    verbose_name_plural = "Add-ons"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("addon", "subscription")


class OverrideForm(forms.ModelForm):
    value = ValueField(required=False, help_text="The granted value; leave empty for a revoke.")

    class Meta:
        model = Override
        fields = ["feature", "effect", "value", "valid_from", "valid_until"]


class OverrideInline(TabularInline):
    """Overrides of the features this user may grant: editable."""

    model = Override
    form = OverrideForm
    extra = 0
    autocomplete_fields = ["feature"]
    verbose_name_plural = "Overrides you may change (grant or revoke one feature for a while)"

    def get_queryset(self, request):
        grantable = features_grantable_by(request.user).values("pk")
        return (
            super()
            .get_queryset(request)
            .filter(feature__in=grantable)
            .select_related("feature", "subscription")
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "feature":
            kwargs["queryset"] = features_grantable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OtherOverrideInline(TabularInline):
    """Overrides of features this user may not grant: shown, never editable."""

    model = Override
    fields = ["feature", "effect", "value", "valid_from", "valid_until"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Other overrides (features you may not grant: read-only)"

    def get_queryset(self, request):
        grantable = features_grantable_by(request.user).values("pk")
        return (
            super()
            .get_queryset(request)
            .exclude(feature__in=grantable)
            .select_related("feature", "subscription")
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SubscriptionForm(AuditedModelForm):
    class Meta:
        model = Subscription
        fields = [
            "external_id",
            "customer",
            "plan",
            "status",
            "trial_ends_at",
            "current_period_end",
            "past_due_since",
        ]


@admin.register(Subscription)
class SubscriptionAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    form = SubscriptionForm
    resource_classes = [SubscriptionResource]
    schedule_path = "/api/v1/subscriptions/{obj.external_id}"
    schedule_fields = ("plan", "status", "trial_ends_at", "current_period_end", "past_due_since")
    list_display = ["external_id", "customer", "plan", "status", "trial_ends_at", "current_period_end"]
    list_filter = ["status", "plan"]
    search_fields = ["external_id", "customer__external_id", "customer__name"]
    list_select_related = ["customer", "plan"]
    autocomplete_fields = ["customer", "plan"]
    inlines = [AddonInline, OverrideInline, OtherOverrideInline]
    actions_detail = ["grant_or_revoke"]
    readonly_fields = ["resolved_entitlements"]

    def get_fieldsets(self, request, obj=None):
        return with_resolved_section(
            super().get_fieldsets(request, obj), obj, "Resolved entitlements of the customer"
        )

    def get_readonly_fields(self, request, obj=None):
        return ["external_id", "customer", "resolved_entitlements"] if obj else []

    @admin.display(description="What the customer has now")
    def resolved_entitlements(self, obj):
        return _resolved_table_once(obj, obj.customer)

    @action(description="Grant or revoke a feature", url_path="grant", permissions=["grant"])
    def grant_or_revoke(self, request, object_id):
        # Overrides are added on their own form, so Support (who may not edit the
        # subscription itself) can grant the features tagged for it.
        return HttpResponseRedirect(
            reverse("admin:subscriptions_override_add") + f"?subscription={object_id}"
        )

    def has_grant_permission(self, request, object_id=None):
        return request.user.has_perm("subscriptions.add_override")

    def save_object(self, request, obj, form, reason):
        services.subscription_save(subscription=obj, actor=request.user, reason=reason, source="admin")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_inline(self, request, obj, reason):
        if isinstance(obj, Override):
            services.override_save(override=obj, actor=request.user, reason=reason, source="admin")
        else:
            services.subscription_addon_save(addon=obj, actor=request.user, reason=reason, source="admin")

    def delete_inline(self, request, obj, reason):
        if isinstance(obj, Override):
            services.override_delete(override=obj, actor=request.user, reason=reason, source="admin")
        else:
            services.subscription_addon_delete(addon=obj, actor=request.user, reason=reason, source="admin")


class OverrideStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "Live now"), ("upcoming", "Not started yet"), ("ended", "Ended")]

    def queryset(self, request, queryset):
        now = timezone.now()
        started = Q(valid_from__isnull=True) | Q(valid_from__lte=now)
        running = Q(valid_until__isnull=True) | Q(valid_until__gt=now)
        if self.value() == "live":
            return queryset.filter(started & running)
        if self.value() == "upcoming":
            return queryset.filter(valid_from__gt=now)
        if self.value() == "ended":
            return queryset.filter(valid_until__lte=now)
        return queryset


class OverrideAdminForm(AuditedModelForm):
    value = ValueField(required=False, help_text="The granted value; leave empty for a revoke.")

    class Meta:
        model = Override
        fields = ["subscription", "feature", "effect", "value", "valid_from", "valid_until"]


@admin.register(Override)
class OverrideAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    form = OverrideAdminForm
    resource_classes = [OverrideResource]
    list_display = [
        "id",
        "subscription",
        "customer",
        "feature",
        "effect",
        "value_display",
        "valid_from",
        "valid_until",
        "state",
    ]
    list_filter = [OverrideStateFilter, "effect", "feature__tags", "feature"]
    search_fields = [
        "subscription__external_id",
        "subscription__customer__external_id",
        "subscription__customer__name",
        "feature__key",
    ]
    list_select_related = ["subscription__customer", "feature"]
    autocomplete_fields = ["subscription", "feature"]
    actions = ["end_now"]

    @admin.display(description="Customer")
    def customer(self, obj):
        return obj.subscription.customer

    @admin.display(description="Value")
    def value_display(self, obj):
        return display_value(obj.value) if obj.effect == Override.Effect.GRANT else "—"

    @admin.display(description="State")
    def state(self, obj):
        now = timezone.now()
        if obj.valid_from and obj.valid_from > now:
            return "not started"
        if obj.valid_until and obj.valid_until <= now:
            return "ended"
        return "live"

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return super().has_change_permission(request)
        return can_override(request.user, "change", obj.feature)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return super().has_delete_permission(request)
        return can_override(request.user, "delete", obj.feature)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "feature":
            kwargs["queryset"] = features_grantable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @reason_action("End the selected overrides now")
    def end_now(self, request, queryset, reason):
        ended = 0
        for override in queryset.select_related("feature", "subscription"):
            services.override_end(override=override, actor=request.user, reason=reason, source="admin")
            ended += 1
        self.message_user(request, f"Ended {ended} override(s).")

    def save_object(self, request, obj, form, reason):
        services.override_save(override=obj, actor=request.user, reason=reason, source="admin")

    def delete_object(self, request, obj, reason):
        services.override_delete(override=obj, actor=request.user, reason=reason, source="admin")
