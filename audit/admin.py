"""The audit log in the admin: every change across all models, newest first, filterable,
searchable by reason, exportable as CSV. Read-only: history is never edited."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter, RelatedDropdownFilter, TextFilter
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from audit.admin_base import (
    REASON_FIELD,
    SYSTEM_USER,
    AuditedModelAdmin,
    AuditedModelForm,
    display_changes,
    linked_reason,
    reason_action,
    reason_field,
    tracked_content_types,
)
from audit.models import AuditEntry, ScheduledChange
from audit.records import record_change
from audit.scheduling import cancel_change
from config.admin import CountLimitedChangelist
from subscriptions.selectors import audit_entries_about_customer
from toolkit.change_context import change_context
from toolkit.spreadsheet import safe_cell


def visible_content_types(user) -> set[int] | None:
    """The kinds of object whose changes `user` may read in the audit log: those whose pages
    they may see (the model's view permission); None for a superuser (every kind). Support
    reads the catalog's history, but not who was granted which object permission, nor staff
    accounts' roles, nor API keys. Content types come from Django's in-process cache."""
    if user.is_superuser:
        return None
    visible = set()
    for perm in user.get_all_permissions():
        app_label, codename = perm.split(".", 1)
        if codename.startswith("view_"):
            try:
                visible.add(ContentType.objects.get_by_natural_key(app_label, codename[5:]).pk)
            except ContentType.DoesNotExist:
                continue
    return visible


class _Echo:
    def write(self, value):
        return value


def render_changes(entry: AuditEntry) -> str:
    return render_to_string("admin/audit/changes.html", {"changes": display_changes(entry.changes)})


class UserFilter(RelatedDropdownFilter):
    """Who made the change, as a searchable drop-down: the staff list, by username, for those
    who may see the staff list (`auth.view_user`); anyone else may pick only themselves."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "user"

    def field_choices(self, field, request, model_admin):
        users = User.objects.order_by("username").only("username")
        if not request.user.has_perm("auth.view_user"):
            users = users.filter(pk=request.user.pk)
        return [(user.pk, user.get_username()) for user in users]


class ModelFilter(RelatedDropdownFilter):
    """The kind of object changed, among the models that keep a history (not every content type
    Django knows: sessions, permissions, log entries...)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "model"

    def field_choices(self, field, request, model_admin):
        visible = visible_content_types(request.user)
        return [
            (content_type.pk, capfirst(content_type.model_class()._meta.verbose_name))
            for content_type in tracked_content_types()
            if visible is None or content_type.pk in visible
        ]


class CustomerFilter(TextFilter):
    """Everything about one customer, by its external id: the customer, its subscriptions, their
    add-ons and overrides, including ones deleted since (found through their history)."""

    title = "customer (external id)"
    parameter_name = "customer"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return audit_entries_about_customer(queryset, external_id=value) if value else queryset


class AuditChangeList(ChangeList):
    """The audit log's page, which also says which subscription each add-on row belongs to, in
    one query for the page (an add-on's own name, "2 × extra-seats", does not say it)."""

    def get_results(self, request):
        super().get_results(request)
        from subscriptions.models import SubscriptionAddon

        addon_type = ContentType.objects.get_for_model(SubscriptionAddon)
        addon_ids = {e.object_id for e in self.result_list if e.content_type_id == addon_type.pk}
        if not addon_ids:
            return
        rows = (
            SubscriptionAddon.history.model.objects.filter(id__in=addon_ids)
            .order_by("id", "-history_date")
            .values_list("id", "subscription__external_id")
        )
        subscriptions: dict[str, str] = {}
        for addon_id, external_id in rows:
            subscriptions.setdefault(str(addon_id), external_id)
        for entry in self.result_list:
            if entry.content_type_id == addon_type.pk:
                entry.subscription_external_id = subscriptions.get(entry.object_id)


@admin.register(AuditEntry)
class AuditEntryAdmin(CountLimitedChangelist, ModelAdmin):
    """The log grows with every write (371k entries at 100k customers): its changelist counts
    only as far as anyone pages (CountLimitedPaginator), its source filter lists the fixed
    sources (`source` has choices: no SELECT DISTINCT), and an index serves "by source, newest
    first"."""

    list_display = [
        "history_date",
        "who",
        "source",
        "kind",
        "object_link",
        "action",
        "reason_html",
        "changes_html",
        "same_request",
    ]
    list_filter = [
        ("user", UserFilter),
        ("content_type", ModelFilter),
        CustomerFilter,
        ("history_date", RangeDateTimeFilter),
        "source",
        "action",
    ]
    list_filter_submit = True
    search_fields = ["reason", "object_repr"]
    list_select_related = ["user", "content_type"]
    show_full_result_count = False
    list_per_page = 50
    date_hierarchy = None
    change_list_template = "admin/audit/auditentry/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changelist(self, request, **kwargs):
        return AuditChangeList

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        visible = visible_content_types(request.user)
        if visible is not None:
            queryset = queryset.filter(content_type__in=visible)
        request_id = request.GET.get("request_id")
        return queryset.filter(request_id=request_id) if request_id else queryset

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in {"request_id", "object_id"} or super().lookup_allowed(lookup, value, request)

    @admin.display(description="User", ordering="user__username")
    def who(self, entry):
        return entry.user.get_username() if entry.user else SYSTEM_USER

    @admin.display(description="Model", ordering="content_type")
    def kind(self, entry):
        model = entry.content_type.model_class()
        return capfirst(model._meta.verbose_name) if model else entry.content_type.model

    @admin.display(description="Object")
    def object_link(self, entry):
        try:
            url = reverse(
                f"admin:{entry.content_type.app_label}_{entry.content_type.model}_change",
                args=[entry.object_id],
            )
            shown = format_html('<a href="{}">{}</a>', url, entry.object_repr)
        except Exception:  # the model has no admin page of its own (e.g. a list entry)
            shown = entry.object_repr
        subscription = getattr(entry, "subscription_external_id", None)
        if subscription:
            return format_html('{} <span class="text-font-subtle-light">on {}</span>', shown, subscription)
        return shown

    @admin.display(description="Reason")
    def reason_html(self, entry):
        return format_html(
            "<span data-testid='reason' class='break-words'>{}</span>", linked_reason(entry.reason)
        )

    @admin.display(description="What changed")
    def changes_html(self, entry):
        return render_changes(entry)

    @admin.display(description="Request")
    def same_request(self, entry):
        url = reverse("admin:audit_auditentry_changelist") + f"?request_id={entry.request_id}"
        return format_html(
            '<a href="{}" title="Other changes in the same request">{}</a>', url, str(entry.request_id)[:8]
        )

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv), name="audit_auditentry_export"),
            *super().get_urls(),
        ]

    def export_csv(self, request):
        """The changelist's current filtered list as CSV, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = changelist.get_queryset(request).iterator(chunk_size=2000)
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(
                [
                    "date",
                    "user",
                    "source",
                    "model",
                    "object_id",
                    "object",
                    "action",
                    "reason",
                    "changes",
                    "request_id",
                ]
            )
            for e in rows:
                changes = "; ".join(f"{c['field']}: {c['old']!r} → {c['new']!r}" for c in e.changes)
                yield writer.writerow(
                    safe_cell(cell)
                    for cell in [
                        e.history_date.isoformat(),
                        e.user.username if e.user else SYSTEM_USER,
                        e.source,
                        f"{e.content_type.app_label}.{e.content_type.model}",
                        e.object_id,
                        e.object_repr,
                        e.get_action_display(),
                        e.reason,
                        changes,
                        e.request_id,
                    ]
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="entitle-audit-log.csv"'
        return response


# Staff accounts and roles, in the admin's own face, so that grants can autocomplete them.
admin.site.unregister(User)
admin.site.unregister(Group)


class StaffUserChangeForm(UserChangeForm):
    change_reason = reason_field()
    clean_change_reason = AuditedModelForm.clean_change_reason


class StaffUserCreationForm(UserCreationForm):
    change_reason = reason_field()
    clean_change_reason = AuditedModelForm.clean_change_reason


# What a staff account may do, beside its roles (recorded by audit.records): old → new.
ACCOUNT_POWERS = ("is_active", "is_staff", "is_superuser")


@admin.register(User)
class StaffUserAdmin(BaseUserAdmin, ModelAdmin):
    """Staff accounts. Who may do what changes here, so every save asks why and is written to
    the audit log: roles joined or left, and the active, staff and superuser flags."""

    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    change_password_form = AdminPasswordChangeForm

    def get_fieldsets(self, request, obj=None):
        return [*super().get_fieldsets(request, obj), ("Why", {"fields": [REASON_FIELD]})]

    def save_model(self, request, obj, form, change):
        before = {name: form.initial.get(name) for name in ACCOUNT_POWERS} if change else {}
        with change_context(actor=request.user, reason=form.cleaned_data[REASON_FIELD], source="admin"):
            super().save_model(request, obj, form, change)
            changes = [
                {"field": name, "old": before.get(name), "new": getattr(obj, name)}
                for name in ACCOUNT_POWERS
                if not change or before.get(name) != getattr(obj, name)
            ]
            if changes:
                record_change(obj, action="~" if change else "+", changes=changes)

    def save_related(self, request, form, formsets, change):
        with change_context(actor=request.user, reason=form.cleaned_data[REASON_FIELD], source="admin"):
            super().save_related(request, form, formsets, change)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the account's row names who made past changes


class RoleForm(forms.ModelForm):
    change_reason = reason_field()
    clean_change_reason = AuditedModelForm.clean_change_reason

    class Meta:
        model = Group
        fields = ["name", "permissions"]


def _permission_names(group: Group) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())


@admin.register(Group)
class RoleAdmin(BaseGroupAdmin, ModelAdmin):
    """Roles. A role's model permissions decide what everyone in it may do: every save asks why
    and the audit log records the name and the permissions, old → new."""

    form = RoleForm

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": ["name", "permissions"]}), ("Why", {"fields": [REASON_FIELD]})]

    def has_delete_permission(self, request, obj=None):
        return False  # a role's deletion would take its members out of it with no reason given

    def save_model(self, request, obj, form, change):
        # What the role was, before the form's relation is saved (save_related).
        form._role_before = (form.initial.get("name"), _permission_names(obj) if change else [])
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with change_context(actor=request.user, reason=form.cleaned_data[REASON_FIELD], source="admin"):
            super().save_related(request, form, formsets, change)
            name_before, permissions_before = form._role_before
            permissions_after = _permission_names(form.instance)
            changes = []
            if not change or name_before != form.instance.name:
                changes.append({"field": "name", "old": name_before, "new": form.instance.name})
            if permissions_before != permissions_after:
                changes.append({"field": "permissions", "old": permissions_before, "new": permissions_after})
            if changes:
                record_change(form.instance, action="~" if change else "+", changes=changes)


@admin.register(ScheduledChange)
class ScheduledChangeAdmin(AuditedModelAdmin):
    """Writes waiting for their time. Created from the API or from the "schedule this change
    for…" choice on change forms; here they are watched and canceled."""

    list_display = ["id", "effective_at", "method", "path", "status", "created_by", "reason_html", "error"]
    list_filter = ["status", ("effective_at", RangeDateTimeFilter), "method", "created_by"]
    list_filter_submit = True
    search_fields = ["path", "reason", "error"]
    list_select_related = ["created_by"]
    readonly_fields = [
        "method",
        "path",
        "body",
        "effective_at",
        "reason",
        "created_by",
        "status",
        "error",
        "applied_at",
        "created_at",
    ]
    actions = ["cancel"]
    ordering = ["-effective_at"]

    def has_add_permission(self, request):
        return False  # scheduled from a change form or the API, never written by hand

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("audit.view_scheduledchange")

    @admin.display(description="Reason")
    def reason_html(self, change):
        return linked_reason(change.reason)

    @reason_action("Cancel the selected scheduled changes", permissions=("cancel",))
    def cancel(self, request, queryset, reason):
        canceled = 0
        for change in queryset:
            cancel_change(change=change, actor=request.user, reason=reason, source="admin")
            canceled += 1
        self.message_user(request, f"Canceled {canceled} scheduled change(s).")
