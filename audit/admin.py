"""The audit log in the admin: every change across all models, newest first, filterable,
searchable by reason, exportable as CSV. Read-only: history is never edited."""

from __future__ import annotations

import csv

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, urlize
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from audit.admin_base import AuditedModelAdmin, reason_action
from audit.models import AuditEntry, ScheduledChange
from audit.scheduling import cancel_change
from config.admin import CountLimitedChangelist


class _Echo:
    def write(self, value):
        return value


def linked_reason(reason: str) -> str:
    """The reason, escaped, with its links made clickable (tickets, documents)."""
    return mark_safe(urlize(reason, nofollow=True, autoescape=True))  # urlize escaped everything else


def render_changes(entry: AuditEntry) -> str:
    return render_to_string("admin/audit/changes.html", {"changes": entry.changes})


@admin.register(AuditEntry)
class AuditEntryAdmin(CountLimitedChangelist, ModelAdmin):
    """The log grows with every write (371k entries at 100k customers): its changelist counts
    only as far as anyone pages (CountLimitedPaginator), its source filter lists the fixed
    sources (`source` has choices: no SELECT DISTINCT), and an index serves "by source, newest
    first"."""

    list_display = [
        "history_date",
        "user",
        "source",
        "content_type",
        "object_link",
        "action",
        "reason_html",
        "changes_html",
        "same_request",
    ]
    list_filter = [("history_date", RangeDateTimeFilter), "source", "action", "content_type", "user"]
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

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        request_id = request.GET.get("request_id")
        return queryset.filter(request_id=request_id) if request_id else queryset

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in {"request_id", "object_id"} or super().lookup_allowed(lookup, value, request)

    @admin.display(description="Object")
    def object_link(self, entry):
        try:
            url = reverse(
                f"admin:{entry.content_type.app_label}_{entry.content_type.model}_change",
                args=[entry.object_id],
            )
        except Exception:  # the model has no admin page of its own (e.g. a list entry)
            return entry.object_repr
        return format_html('<a href="{}">{}</a>', url, entry.object_repr)

    @admin.display(description="Reason")
    def reason_html(self, entry):
        return format_html("<span data-testid='reason'>{}</span>", linked_reason(entry.reason))

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
                    [
                        e.history_date.isoformat(),
                        e.user.username if e.user else "system",
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

        response = StreamingHttpResponse(lines(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="entitle-audit-log.csv"'
        return response


# Staff accounts and roles, in the admin's own face, so that grants can autocomplete them.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class StaffUserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class RoleAdmin(BaseGroupAdmin, ModelAdmin):
    pass


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
