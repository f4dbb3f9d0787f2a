"""Admin for customers, subscriptions, overrides and top-ups. The customer and subscription
pages show the resolved entitlements, which is what support looks at when a customer calls;
the customer page also shows the usage of its metered features this period."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.decorators import action
from unfold.widgets import UnfoldAdminSelect2Widget, UnfoldAdminSplitDateTimeVerticalWidget

from audit.admin_base import REASON_FIELD, AuditedModelAdmin, AuditedModelForm, linked_reason, reason_action
from audit.imports.admin import AuditedImportExportMixin
from audit.models import AuditEntry
from catalog.forms import ValueField
from catalog.models import Feature, Item
from catalog.permissions import features_grantable_by
from catalog.selectors import CatalogSpecs, load_catalog_specs
from catalog.values import UNLIMITED, display_value
from subscriptions import selectors, services
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon, TopUp
from subscriptions.permissions import can_override
from subscriptions.resolution import Resolution
from subscriptions.resources import CustomerResource, OverrideResource, SubscriptionResource
from usage.selectors import PeriodUsage, current_usage


@dataclass(frozen=True, slots=True)
class Resolved:
    """A customer resolved at one instant, with the catalog it was resolved against."""

    now: datetime
    catalog: CatalogSpecs
    resolution: Resolution


def resolve(customer: Customer) -> Resolved:
    """The customer's answers now (the catalog read once, for the answers and their features' ids)."""
    now = timezone.now()
    catalog = load_catalog_specs()
    return Resolved(now, catalog, selectors.resolve_customer(customer, now=now, catalog=catalog))


def resolved_table(customer: Customer, resolved: Resolved | None = None) -> str:
    """The customer's answers for every active feature, overrides apart from what is
    inherited from plans, add-ons and segments; the parts of a sum; and the overrides that
    have not started yet, with their start and end."""
    resolved = resolved or resolve(customer)
    now, resolution = resolved.now, resolved.resolution
    rows = [_row(a) for a in sorted(resolution.answers.values(), key=lambda a: a.feature_key)]
    explicit = [row for row in rows if row["source"].startswith("override:")]
    inherited = [row for row in rows if not row["source"].startswith("override:")]
    return render_to_string(
        "admin/subscriptions/resolved_entitlements.html",
        {
            "explicit": explicit,
            "inherited": inherited,
            "coming": [_coming_row(o) for o in selectors.coming_overrides(customer, now=now)],
            "evaluated_at": now,
            "valid_until": resolution.valid_until,
        },
    )


def _row(answer) -> dict:
    """One answer as the table shows it, with the parts of a sum of plans and add-ons."""
    if not answer.enabled:
        shown = "off"
    elif answer.unlimited:
        shown = UNLIMITED
    else:
        shown = display_value(answer.value)
    parts = [_part(c) for c in answer.contributions] if len(answer.contributions) > 1 else []
    return {
        "feature_key": answer.feature_key,
        "enabled": answer.enabled,
        "shown": shown,
        "source": answer.source,
        "valid_until": answer.valid_until,
        "parts": parts,
    }


def _part(contribution) -> str:
    """`plan:business 25`, `addon:extra-seats 3 × 5 = 15`."""
    source, units, per_unit = contribution.source, contribution.units, contribution.per_unit
    amount = display_value(contribution.amount)
    if units > 1 and per_unit is not None and per_unit != contribution.amount:
        return f"{source} {units} × {display_value(per_unit)} = {amount}"
    return f"{source} {amount}"


def _coming_row(override: Override) -> dict:
    return {
        "id": override.pk,
        "feature_key": override.feature.key,
        "what": override.in_words,
        "subscription": override.subscription.external_id,
        "valid_from": override.valid_from,
        "valid_until": override.valid_until,
    }


def override_value_shown(override: Override) -> str:
    """A grant's value in words (`on`, `40`, `email+chat`); a revoke has none."""
    return display_value(override.value) if override.effect == Override.Effect.GRANT else "—"


def _resolved_once(obj, customer: Customer) -> Resolved:
    """The customer resolved once per page: unfold reads a read-only field's contents several
    times while rendering it, and the resolved table and the usage section read the same
    answers."""
    if not hasattr(obj, "_resolved"):
        obj._resolved = resolve(customer)
    return obj._resolved


def _resolved_table_once(obj, customer: Customer) -> str:
    if not hasattr(obj, "_resolved_table"):
        obj._resolved_table = resolved_table(customer, _resolved_once(obj, customer))
    return obj._resolved_table


def link_to_customer(obj) -> str:
    """A link to the customer page of `obj.customer` (a row of a customer's: a top-up, a
    consumption), named by its external id."""
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:subscriptions_customer_change", args=[obj.customer_id]),
        obj.customer.external_id,
    )


USAGE_CHART_COLOR = "#7c3aed"


def usage_section(customer: Customer, resolved: Resolved, user) -> str:
    """The customer's metered features this period: used against the limit, what remains,
    when the count starts again, and the period's days as bars; "Top up" where this user may
    top the limit up. One query for the usage, one more for a user who may top up."""
    usage = current_usage(customer.pk, resolved.resolution.answers.values(), resolved.catalog.feature_ids)
    may_top_up = _features_to_top_up(user, usage)
    return render_to_string(
        "admin/subscriptions/metered_usage.html",
        {
            "rows": [_usage_row(u, customer, may_top_up) for u in usage],
            "customer": customer,
            "csv": reverse("admin:usage_consumption_customer_csv", args=[customer.pk]),
            "consumptions": reverse("admin:usage_consumption_changelist") + f"?customer={customer.pk}",
            "evaluated_at": resolved.now,
        },
    )


def _features_to_top_up(user, usage: list[PeriodUsage]) -> set[int]:
    """Ids of the metered features this user may top up, when a row could offer it."""
    if user is None or not any(u.granted and not u.unlimited for u in usage):
        return set()
    if not user.has_perm("subscriptions.add_topup"):
        return set()
    return set(features_grantable_by(user).filter(kind=Feature.Kind.METERED).values_list("pk", flat=True))


def _usage_row(usage: PeriodUsage, customer: Customer, may_top_up: set[int]) -> dict:
    percent = usage.percent
    label = None  # (text, unfold label variant)
    if usage.level == "near":
        label = ("near the limit", "warning")
    elif usage.level == "reached":
        label = ("over the limit" if usage.used > (usage.limit or 0) else "limit reached", "danger")
    top_up = ""
    if usage.feature_id in may_top_up and usage.granted and not usage.unlimited:
        top_up = (
            reverse("admin:subscriptions_topup_add") + f"?customer={customer.pk}&feature={usage.feature_id}"
        )
    return {
        "feature_key": usage.feature_key,
        "granted": usage.granted,
        "used": f"{usage.used:,}",
        "limit": UNLIMITED if usage.unlimited else f"{usage.limit:,}",
        "topped_up": f"{usage.topped_up:,}" if usage.topped_up else "",
        "remaining": "—" if usage.remaining is None else f"{usage.remaining:,}",
        # Rounded down: 99.6 % is not "100 %" while something remains.
        "percent": "—" if percent is None else f"{math.floor(percent):,} %",
        "level": usage.level,
        "label": label,
        "limit_type": "hard" if usage.hard else "soft",
        "period_start": usage.period_start,
        "resets_at": usage.resets_at,
        "chart": usage_chart(usage),
        "last_day": usage.days[-1][0] if usage.days else None,
        "top_up_url": top_up,
    }


def usage_chart(usage: PeriodUsage) -> dict[str, str] | None:
    """Bars: what was used each day of the period (days to come are empty), as the
    dashboard's charts (reporting/_chart.html, drawn by unfold's script: no inline script).
    None for a period of one day."""
    if len(usage.days) < 2:
        return None
    data = {
        "labels": [f"{day:%Y-%m-%d}" for day, _ in usage.days],
        "datasets": [
            {
                "label": f"{usage.feature_key} used",
                "data": [count for _, count in usage.days],
                "backgroundColor": USAGE_CHART_COLOR,
                "borderRadius": 2,
                "maxBarThickness": 10,
            }
        ],
    }
    options = {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {"legend": {"display": False}, "tooltip": {"enabled": True}},
        "scales": {
            # The x axis's line alone, so the period's extent shows under days without usage.
            "x": {"ticks": {"display": False}, "grid": {"display": False}, "border": {"color": "#9ca3af"}},
            "y": {"display": False, "beginAtZero": True, "grid": {"display": False}},
        },
    }
    return {"data": json.dumps(data), "options": json.dumps(options), "height": "56"}


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
    hide_title = True  # the row's first cell names the subscription already

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
        # 250 countries: searchable by typing, not a plain dropdown to scroll.
        widgets = {"country": UnfoldAdminSelect2Widget}


@admin.register(Customer)
class CustomerAdmin(AuditedImportExportMixin, AuditedModelAdmin):
    # A customer's story is also its subscriptions', their add-ons' and overrides'.
    history_covers_several_objects = True
    history_intro = (
        "Every change to this customer, its subscriptions, their add-ons and overrides, newest first."
    )

    def history_entries(self, obj):
        entries = selectors.audit_entries_about_customer(
            AuditEntry.objects.all(), external_id=obj.external_id
        )
        return entries, {"customer": obj.external_id}

    form = CustomerForm
    resource_classes = [CustomerResource]
    list_display = ["external_id", "name", "country_name", "created_at"]
    list_filter = ["country", "subscriptions__status", "subscriptions__plan"]
    search_fields = ["external_id", "name"]
    ordering = ["external_id"]
    inlines = [SubscriptionSummaryInline]
    readonly_fields = ["resolved_entitlements", "metered_usage"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = with_resolved_section(super().get_fieldsets(request, obj), obj, "Resolved entitlements")
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if f != "metered_usage"]})
            for name, options in fieldsets
        ]
        if obj is not None:
            fieldsets.insert(2, ("Usage this period", {"fields": ["metered_usage"]}))
        return fieldsets

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # A read-only field is given the object alone: the usage section needs to know
            # who looks, to offer "Top up" to those who may.
            obj._viewer = request.user
        return obj

    def get_inlines(self, request, obj):
        # A customer being added has no subscriptions: no empty table on the add form.
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request, obj=None):
        return ["external_id", "resolved_entitlements", "metered_usage"] if obj else []

    @admin.display(description="What this customer has now")
    def resolved_entitlements(self, obj):
        return _resolved_table_once(obj, obj)

    @admin.display(description="Metered features in their current period")
    def metered_usage(self, obj):
        if not hasattr(obj, "_usage_section"):
            obj._usage_section = usage_section(obj, _resolved_once(obj, obj), getattr(obj, "_viewer", None))
        return obj._usage_section

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
    verbose_name = "add-on"
    verbose_name_plural = "Add-ons"
    hide_title = True  # the row's add-on field names it already

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("addon", "subscription")

    def has_view_permission(self, request, obj=None):
        # Seen read-only (Support), an empty table says nothing: shown only with add-ons.
        if obj is not None and not self.has_change_permission(request, obj) and not obj.addons.exists():
            return False
        return super().has_view_permission(request, obj)


GRANT_VALUE_HELP = (
    "The granted value: on for a switch, any whole number (or unlimited) for a quantity, a "
    "number within bounds for a range, a level for a custom. Leave empty for a revoke."
)
OVERRIDE_LABELS = {"valid_from": "Valid from (UTC)", "valid_until": "Valid until (UTC)"}
OVERRIDE_HELP = {
    "valid_from": "Date and time in UTC. Empty: from now on.",
    "valid_until": "Date and time in UTC. Empty: until removed.",
}


def _date_over_time() -> UnfoldAdminSplitDateTimeVerticalWidget:
    """Date above time: a table row of overrides then fits the page at 1400 px."""
    return UnfoldAdminSplitDateTimeVerticalWidget(
        date_attrs={"placeholder": "Date"}, time_attrs={"placeholder": "Time"}
    )


class OverrideForm(forms.ModelForm):
    value = ValueField(required=False, help_text=GRANT_VALUE_HELP)

    class Meta:
        model = Override
        fields = ["feature", "effect", "value", "valid_from", "valid_until"]
        labels = OVERRIDE_LABELS
        help_texts = OVERRIDE_HELP
        widgets = {"valid_from": _date_over_time(), "valid_until": _date_over_time()}


class OverrideInline(TabularInline):
    """Overrides of the features this user may grant: editable."""

    model = Override
    form = OverrideForm
    extra = 0
    autocomplete_fields = ["feature"]
    hide_title = True  # the row's feature field names it already
    readonly_fields = ["value_shown"]  # shown instead of the value when read-only
    verbose_name = "override"
    verbose_name_plural = "Overrides you may change (grant or revoke one feature for a while)"
    # For a user who sees the subscription read-only (Support grants on the override's own form).
    read_only_title = "Overrides of features you may grant (add one with “Grant or revoke a feature”)"

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

    def get_fields(self, request, obj=None):
        parent = self.admin_site._registry[self.parent_model]
        editable = self.has_change_permission(request, obj) and parent.has_change_permission(request, obj)
        # Read-only, the stored JSON (`true`) would show: the value in words (`on`) instead.
        return ["feature", "effect", "value" if editable else "value_shown", "valid_from", "valid_until"]

    @admin.display(description="Value")
    def value_shown(self, obj):
        return override_value_shown(obj)


class OtherOverrideInline(TabularInline):
    """Overrides of features this user may not grant: shown, never editable."""

    model = Override
    fields = ["feature", "effect", "value_shown", "valid_from", "valid_until"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    hide_title = True
    verbose_name_plural = "Other overrides (features you may not grant: read-only)"

    @admin.display(description="Value")
    def value_shown(self, obj):
        return override_value_shown(obj)

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


class PlanChoiceField(forms.ModelChoiceField):
    """Plans by name, legacy and archived ones said so."""

    def label_from_instance(self, obj):
        if obj.status == Item.Status.ACTIVE:
            return obj.name
        return f"{obj.name} ({obj.status})"


class SubscriptionForm(AuditedModelForm):
    """A new subscription, or a plan change, goes on an active plan only; a subscription
    already on a legacy plan keeps it (its plan is offered, marked)."""

    plan = PlanChoiceField(
        queryset=Item.objects.none(),
        widget=UnfoldAdminSelect2Widget,
        help_text="Legacy plans are grandfathered: subscriptions on them keep them, new ones may not join.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.plan_id if self.instance.pk else None
        offered = Q(status=Item.Status.ACTIVE) | Q(status=Item.Status.LEGACY) | Q(pk=current)
        self.fields["plan"].queryset = Item.objects.filter(offered, kind=Item.Kind.PLAN).order_by(
            "status", "rank", "name"
        )

    def clean_plan(self):
        plan = self.cleaned_data["plan"]
        kept = self.instance.pk is not None and plan.pk == self.instance.plan_id
        if plan.status != Item.Status.ACTIVE and not kept:
            state = "legacy (grandfathered)" if plan.status == Item.Status.LEGACY else "archived"
            raise ValidationError(
                f"{plan.name} is a {state} plan: subscriptions already on it keep it, but no new "
                "subscription may be put on it. Choose an active plan."
            )
        return plan

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
    autocomplete_fields = ["customer"]
    inlines = [AddonInline, OverrideInline, OtherOverrideInline]
    actions_detail = ["grant_or_revoke"]
    readonly_fields = ["resolved_entitlements"]

    def get_fieldsets(self, request, obj=None):
        return with_resolved_section(
            super().get_fieldsets(request, obj), obj, "Resolved entitlements of the customer"
        )

    def get_readonly_fields(self, request, obj=None):
        return ["external_id", "customer", "resolved_entitlements"] if obj else []

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if not self._has_other_overrides(request, obj):
            # No empty read-only table: on a subscription being added, or without such overrides.
            inlines = [inline for inline in inlines if not isinstance(inline, OtherOverrideInline)]
        if obj is not None and not self.has_change_permission(request, obj):
            for inline in inlines:
                if isinstance(inline, OverrideInline):
                    inline.verbose_name_plural = inline.read_only_title
        return inlines

    def _has_other_overrides(self, request, obj) -> bool:
        """Whether the subscription has overrides this user may not grant (asked once a page)."""
        if obj is None:
            return False
        cache = request.__dict__.setdefault("_other_overrides", {})
        if obj.pk not in cache:
            grantable = features_grantable_by(request.user).values("pk")
            cache[obj.pk] = obj.overrides.exclude(feature__in=grantable).exists()
        return cache[obj.pk]

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
        return [("live", "Live now"), ("upcoming", "Coming (not started yet)"), ("ended", "Ended")]

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
    value = ValueField(required=False, help_text=GRANT_VALUE_HELP)

    class Meta:
        model = Override
        fields = ["subscription", "feature", "effect", "value", "valid_from", "valid_until"]
        labels = OVERRIDE_LABELS
        help_texts = OVERRIDE_HELP


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
        return override_value_shown(obj)

    @admin.display(description="State")
    def state(self, obj):
        now = timezone.now()
        if obj.valid_from and obj.valid_from > now:
            return "coming"
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


class MeteredFeatureFilter(admin.SimpleListFilter):
    """The metered features (one query on the features, none on the rows listed)."""

    title = "feature"
    parameter_name = "feature"

    def lookups(self, request, model_admin):
        metered = Feature.objects.filter(kind=Feature.Kind.METERED).order_by("key")
        return [(str(pk), key) for pk, key in metered.values_list("pk", "key")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(feature_id=value) if value.isdigit() else queryset.none()


class TopUpForm(AuditedModelForm):
    """A top-up is decided by the service (`services.topup_grant`): whether the customer has
    the feature with a limit depends on its resolved answer, not on the form's fields. Its
    refusal belongs on the form, and the admin has no step after a valid form where an error
    can still be shown: so the write is the form's last check (`is_valid`), inside the admin's
    transaction, and the service's message becomes the form's error."""

    actor = None  # who tops up: set per request by TopUpAdmin.get_form

    class Meta:
        model = TopUp
        fields = ["customer", "feature", "amount"]
        labels = {"amount": "Units to add"}
        help_texts = {
            "amount": "Added to the customer's limit for the current usage period only; the next "
            "period starts from the plan's limit again.",
        }

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        if getattr(self, "topup", None) is None:
            data = self.cleaned_data
            try:
                self.topup = services.topup_grant(
                    customer=data["customer"],
                    feature=data["feature"],
                    amount=data["amount"],
                    actor=self.actor,
                    reason=data[REASON_FIELD],
                    source="admin",
                )
            except ValidationError as error:
                self.add_error(None, error)
                return False
            except PermissionDenied as error:
                self.add_error("feature", str(error))
                return False
        return True

    def save(self, commit: bool = True) -> TopUp:
        return self.topup


@admin.register(TopUp)
class TopUpAdmin(AuditedModelAdmin):
    """Top-ups: added by Support (and whoever may grant the feature), never edited or deleted:
    a mistaken one is compensated by the next decision, and its history stays."""

    form = TopUpForm
    list_display = [
        "created_at",
        "customer_link",
        "feature",
        "amount_shown",
        "period_start",
        "granted_by",
        "reason",
    ]
    list_filter = [MeteredFeatureFilter]
    search_fields = ["customer__external_id", "customer__name", "feature__key"]
    list_select_related = ["customer", "feature"]
    autocomplete_fields = ["customer"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        created = TopUp.history.model.objects.filter(id=OuterRef("pk"), history_type="+").order_by(
            "history_id"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                granted_by_name=Subquery(created.values("history_user__username")[:1]),
                granted_because=Subquery(created.values("history_change_reason")[:1]),
            )
        )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "feature", "amount"]
        return ["customer", "feature", "amount", "period_start", "created_at", "granted_by", "reason"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "feature":
            # Only what this user may top up: metered features it may grant.
            kwargs["queryset"] = features_grantable_by(request.user).filter(kind=Feature.Kind.METERED)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_link(self, obj):
        return link_to_customer(obj)

    @admin.display(description="Added", ordering="amount")
    def amount_shown(self, obj):
        return f"+{obj.amount:,}"

    @admin.display(description="By")
    def granted_by(self, obj):
        return getattr(obj, "granted_by_name", None) or "—"

    @admin.display(description="Reason")
    def reason(self, obj):
        reason = getattr(obj, "granted_because", None)
        return linked_reason(reason) if reason else "—"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_object(self, request, obj, form, reason):
        # Made by the form through services.topup_grant (TopUpForm): nothing is left to save.
        pass

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        messages.success(
            request,
            f"Added {obj.amount:,} to {obj.customer.external_id}'s {obj.feature.key} limit for the "
            f"period from {obj.period_start:%Y-%m-%d %H:%M} UTC.",
        )
        return HttpResponseRedirect(reverse("admin:subscriptions_customer_change", args=[obj.customer_id]))
