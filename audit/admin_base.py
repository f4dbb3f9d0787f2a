"""The admin's side of change control: every add, change and delete form and every bulk
action asks for a reason, and saves go through the services inside a change context.

Model admins subclass `AuditedModelAdmin` and implement `save_object` / `delete_object`
(and `save_inline` / `delete_inline` for their inlines) by calling a service.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import urlize
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminTextareaWidget

from config.admin import CountLimitedChangelist
from toolkit.change_context import change_context, normalize_reason

# The author of changes no person made (beat's sweeps, expiring trials, migrations).
SYSTEM_USER = "system"

REASON_FIELD = "change_reason"
REASON_HELP = "Say why; links to tickets or documents are shown as links in the history."


def reason_field() -> forms.CharField:
    return forms.CharField(
        label="Reason for this change",
        help_text=REASON_HELP,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        required=True,
    )


_LINK = (
    '<a class="underline text-primary-600 dark:text-primary-500" target="_blank"'
    ' rel="noopener noreferrer nofollow" href='
)


def linked_reason(reason: str) -> SafeString:
    """The reason, escaped, with its links (tickets, documents) drawn as links that open in a
    new tab without handing it this page (rel=noopener)."""
    html = urlize(reason, autoescape=True)  # escapes everything that is not a link it makes
    return mark_safe(html.replace("<a href=", _LINK))  # a "<a" typed in a reason is escaped by now


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def display_changes(changes: list[dict]) -> list[dict]:
    """A history row's changes as shown: times stored in ISO 8601 shown as every other time,
    true and false as yes and no, lists as their items (an empty one as nothing)."""

    def shown(value):
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list):
            return ", ".join(str(shown(item)) for item in value) or "none"
        if isinstance(value, str) and _ISO_TIME.match(value):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                return value
            if timezone.is_aware(when):
                when = timezone.localtime(when)
            return formats.date_format(when, "DATETIME_FORMAT")
        return value

    return [
        {**change, "old": shown(change.get("old")), "new": shown(change.get("new"))} for change in changes
    ]


def tracked_content_types() -> list[ContentType]:
    """The content types of our models that keep a history, or whose changes are recorded
    without one (audit.records), by name: what the audit log lists."""
    from audit.records import RECORDED_MODELS

    models = [model for model in apps.get_models() if "_history_records" in model.__dict__]
    models += sorted(RECORDED_MODELS, key=lambda model: model._meta.label)
    by_model = ContentType.objects.get_for_models(*models)
    return sorted(by_model.values(), key=lambda content_type: content_type.name)


class AuditedModelForm(forms.ModelForm):
    """A model form that also asks why."""

    change_reason = reason_field()

    def clean_change_reason(self) -> str:
        reason = normalize_reason(self.cleaned_data.get(REASON_FIELD))
        if not reason:
            raise ValidationError("Say why this change is made.")
        return reason


SCHEDULE_FIELD = "schedule_for"


def schedule_field() -> forms.DateTimeField:
    from unfold.widgets import UnfoldAdminSplitDateTimeWidget

    return forms.SplitDateTimeField(
        label="Schedule this change for…",
        required=False,
        widget=UnfoldAdminSplitDateTimeWidget,
        help_text="Leave empty to save now. Otherwise the change is stored and applied at that time "
        "(UTC), with your permissions then; changes in the tables below are not scheduled.",
    )


def api_value(obj, name: str, form: forms.ModelForm) -> object:
    """A field's value as the API takes it: related objects by key, dates in ISO 8601."""
    field = obj._meta.get_field(name)
    value = form.cleaned_data.get(name) if field.many_to_many else getattr(obj, name)
    if field.many_to_many:
        return [related.key for related in value or []]
    if field.is_relation:
        return getattr(value, "key", None) or getattr(value, "external_id", None)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if field.get_internal_type() == "CharField" and hasattr(field, "countries"):
        return [str(code) for code in value] if getattr(field, "multiple", False) else str(value or "")
    return value


class ScheduleFormMixin(forms.Form):
    """Adds the optional "schedule this change for…" time to a change form."""

    schedule_for = schedule_field()

    def clean_schedule_for(self):
        when = self.cleaned_data.get(SCHEDULE_FIELD)
        if when is not None and when <= timezone.now():
            raise ValidationError("Pick a time in the future, or leave it empty to save now.")
        return when


class ReasonForm(forms.Form):
    """The reason page of a delete or a bulk action."""

    change_reason = reason_field()

    clean_change_reason = AuditedModelForm.clean_change_reason


class AuditedModelAdmin(CountLimitedChangelist, ModelAdmin):
    """Base of every admin for an audited model. Its changelist counts rows only up to a limit
    (config.admin.CountLimitedPaginator): customers, subscriptions and overrides are big."""

    form = AuditedModelForm
    delete_confirmation_template = "admin/audit/delete_confirmation.html"
    show_full_result_count = False
    list_per_page = 50

    # Admins whose change form may be scheduled set this to the API path of the object
    # (formatted with it) and list the fields the API takes (docs/audit.md, docs/api.md).
    schedule_path: str | None = None
    schedule_fields: tuple[str, ...] = ()

    # --- what subclasses implement -------------------------------------------------------
    def save_object(self, request: HttpRequest, obj: Any, form: forms.ModelForm, reason: str) -> None:
        raise NotImplementedError

    def delete_object(self, request: HttpRequest, obj: Any, reason: str) -> None:
        raise NotImplementedError

    def save_inline(self, request: HttpRequest, obj: Any, reason: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no service for {type(obj).__name__}")

    def delete_inline(self, request: HttpRequest, obj: Any, reason: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no service for {type(obj).__name__}")

    # --- Django admin hooks ---------------------------------------------------------------
    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting in bulk would skip the reason: end things instead, or delete one by one.
        actions.pop("delete_selected", None)
        return actions

    def get_fieldsets(self, request, obj=None):
        extra = (REASON_FIELD, SCHEDULE_FIELD)
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if f not in extra]})
            for name, options in super().get_fieldsets(request, obj)
        ]
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if editable:
            why = [REASON_FIELD, SCHEDULE_FIELD] if self._schedulable(obj) else [REASON_FIELD]
            fieldsets.append(("Why", {"fields": why}))
        return fieldsets

    def _schedulable(self, obj) -> bool:
        return obj is not None and self.schedule_path is not None

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self._schedulable(obj):
            # Declared on the base form, so the admin's form factory knows the extra field.
            kwargs["form"] = type(self.form.__name__, (ScheduleFormMixin, self.form), {})
        return super().get_form(request, obj, change, **kwargs)

    def scheduled_request(self, obj, form) -> tuple[str, str, dict]:
        """The API write equivalent to this form's changes: PATCH of the changed fields."""
        path = self.schedule_path.format(obj=obj)
        body = {
            name: api_value(obj, name, form) for name in form.changed_data if name in self.schedule_fields
        }
        return "PATCH", path, body

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data[REASON_FIELD]
        if form.cleaned_data.get(SCHEDULE_FIELD):
            # Stored instead of saved: the same write, made later by the sweep, as this user.
            from audit.scheduling import schedule_change

            method, path, body = self.scheduled_request(obj, form)
            request.scheduled_change = schedule_change(
                method=method,
                path=path,
                body=body,
                effective_at=form.cleaned_data[SCHEDULE_FIELD],
                actor=request.user,
                reason=reason,
                source="admin",
            )
            return
        with change_context(actor=request.user, reason=reason, source="admin"):
            self.save_object(request, obj, form, reason)

    def save_related(self, request, form, formsets, change):
        if getattr(request, "scheduled_change", None) is not None:
            if any(formset.has_changed() for formset in formsets):
                messages.warning(
                    request, "The changes in the tables were not scheduled: save them on their own."
                )
            return
        # Many-to-many fields are set by the services in save_object; only inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def construct_change_message(self, request, form, formsets, add=False):
        if getattr(request, "scheduled_change", None) is not None:
            return ""  # nothing was saved: the inlines were not even processed
        return super().construct_change_message(request, form, formsets, add)

    def log_change(self, request, obj, message):
        if getattr(request, "scheduled_change", None) is None:
            super().log_change(request, obj, message)

    def response_change(self, request, obj):
        change = getattr(request, "scheduled_change", None)
        if change is None:
            return super().response_change(request, obj)
        from django.urls import reverse

        messages.success(
            request, f"Scheduled for {change.effective_at:%Y-%m-%d %H:%M} UTC: nothing changes until then."
        )
        return HttpResponseRedirect(reverse("admin:audit_scheduledchange_change", args=[change.pk]))

    def save_formset(self, request, form, formset, change):
        reason = form.cleaned_data[REASON_FIELD]
        with change_context(actor=request.user, reason=reason, source="admin"):
            instances = formset.save(commit=False)
            for obj in formset.deleted_objects:
                self.delete_inline(request, obj, reason)
            for obj in instances:
                self.save_inline(request, obj, reason)

    def delete_view(self, request, object_id, extra_context=None):
        extra_context = {**(extra_context or {}), "reason_form": ReasonForm()}
        if request.method == "POST":
            form = ReasonForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Say why this is deleted: the reason is required.")
                return HttpResponseRedirect(request.path)
            request.change_reason = form.cleaned_data[REASON_FIELD]
        return super().delete_view(request, object_id, extra_context)

    # Whether an object's history page lists entries of other objects too (a customer's lists its
    # subscriptions', add-ons' and overrides'): the page then names each entry's object.
    history_covers_several_objects = False
    history_intro = "Every change to this {verbose_name}, newest first."

    def history_entries(self, obj) -> tuple[QuerySet, dict[str, object]]:
        """The audit entries an object's history page lists, and the audit log filter that
        lists the same: the object's own, unless an admin says its story is wider."""
        from audit.models import AuditEntry

        content_type = ContentType.objects.get_for_model(self.model)
        entries = AuditEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))
        return entries, {"content_type__id__exact": content_type.pk, "object_id": obj.pk}

    def history_view(self, request, object_id, extra_context=None):
        """The object's own history: who, when, why (links clickable) and old → new."""
        from django.core.paginator import Paginator

        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        entries, log_filter = self.history_entries(obj)
        audit_log = reverse("admin:audit_auditentry_changelist") + "?" + urlencode(log_filter)
        entries = entries.select_related("user", "content_type")
        page = Paginator(entries, 50).get_page(request.GET.get("page"))
        for entry in page:
            entry.reason_html = linked_reason(entry.reason)
            entry.shown_changes = display_changes(entry.changes)
            model = entry.content_type.model_class()
            entry.model_name = model._meta.verbose_name if model else entry.content_type.model
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of {obj}",
            "opts": self.model._meta,
            "object": obj,
            "original": obj,
            "page": page,
            "audit_log_url": audit_log,
            "several_objects": self.history_covers_several_objects,
            "history_intro": self.history_intro.format(verbose_name=self.opts.verbose_name),
            "system_user": SYSTEM_USER,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit/object_history.html", context)

    def delete_model(self, request, obj):
        reason = getattr(request, "change_reason", "")
        with change_context(actor=request.user, reason=reason, source="admin"):
            self.delete_object(request, obj, reason)


def reason_action(description: str, *, permissions: tuple[str, ...] = ("change",)) -> Callable:
    """A bulk action that first asks for a reason on an intermediate page, then runs
    `func(modeladmin, request, queryset, reason)` in one transaction."""

    def decorate(func: Callable) -> Callable:
        @admin.action(description=description, permissions=permissions)
        @wraps(func)
        def action(modeladmin, request, queryset):
            form = ReasonForm(request.POST if "apply_reason" in request.POST else None)
            if form.is_bound and form.is_valid():
                reason = form.cleaned_data[REASON_FIELD]
                try:
                    with (
                        transaction.atomic(),
                        change_context(actor=request.user, reason=reason, source="admin"),
                    ):
                        result = func(modeladmin, request, queryset, reason)
                except ValidationError as error:
                    text = "; ".join(getattr(error, "messages", [str(error)]))
                    modeladmin.message_user(request, text, messages.ERROR)
                    return None
                return result
            context = {
                **modeladmin.admin_site.each_context(request),
                "title": description,
                "opts": modeladmin.model._meta,
                "queryset": queryset,
                "form": form,
                "action_name": request.POST.get("action", func.__name__),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
            }
            return TemplateResponse(request, "admin/audit/action_reason.html", context)

        return action

    return decorate
