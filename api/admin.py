"""API keys in the admin: made here or with `manage.py create_api_key`, the key is shown
once on creation; revoke or expire from the list or the key's page. Every add, edit, revoke
and expire asks why first; writes go through `api.services`, which record them in the audit
log and tell every web process to re-read the key."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from rest_framework_api_key.models import APIKey as PackageAPIKey
from unfold.admin import ModelAdmin
from unfold.decorators import action

from api import services
from api.models import APIKey
from audit.admin_base import REASON_FIELD, AuditedModelForm, ReasonForm, reason_action

# The package registers its own (unused) key model; ours, with owner and scope, replaces it.
if admin.site.is_registered(PackageAPIKey):
    admin.site.unregister(PackageAPIKey)


class APIKeyForm(AuditedModelForm):
    """The key's settings, and why they are set (required)."""

    class Meta:
        model = APIKey
        fields = ["name", "owner", "scope", "expiry_date", "rate_limit"]


@admin.register(APIKey)
class APIKeyAdmin(ModelAdmin):
    form = APIKeyForm
    list_display = ["name", "prefix", "owner", "scope", "created", "expiry_date", "is_usable", "last_used_at"]
    list_filter = ["scope", "revoked", "created"]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    show_full_result_count = False
    actions = ["revoke_selected", "expire_selected"]
    actions_detail = ["revoke_detail", "expire_detail"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["prefix", "created", "last_used_at", "revoked"]
        if obj is None:
            return fixed
        fixed.append("owner")  # a key acts as one user for its whole life
        if obj.revoked:
            fixed += ["name", "scope", "expiry_date", "rate_limit"]
        return fixed

    def get_fieldsets(self, request, obj=None):
        fields = ["name", "owner", "scope", "expiry_date", "rate_limit"]
        if obj is not None:
            fields = ["prefix", *fields, "revoked", "created", "last_used_at"]
        fieldsets = [(None, {"fields": fields})]
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if editable:
            fieldsets.append(("Why", {"fields": [REASON_FIELD]}))
        return fieldsets

    def get_object(self, request, object_id, from_field=None):
        """The key by its primary key, or by its prefix: the audit log names keys by prefix
        (their primary key holds the key's hash), and links here with it."""
        found = super().get_object(request, object_id, from_field)
        if found is None and from_field is None and "." not in str(object_id):
            found = self.get_queryset(request).filter(prefix=object_id).first()
        return found

    @admin.display(description="Usable", boolean=True)
    def is_usable(self, obj: APIKey) -> bool:
        return not obj.revoked and not obj.has_expired

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data[REASON_FIELD]
        if change:
            services.api_key_save(api_key=obj, actor=request.user, reason=reason, source="admin")
            return
        created, raw_key = services.api_key_create(
            name=obj.name,
            owner=obj.owner,
            scope=obj.scope,
            expires=obj.expiry_date,
            rate_limit=obj.rate_limit,
            actor=request.user,
            reason=reason,
            source="admin",
        )
        obj.pk, obj.prefix = created.pk, created.prefix
        messages.warning(
            request,
            f"The key for {created.name} is: {raw_key} — copy it now: it is stored only as a hash "
            "and will not be shown again.",
        )

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's row says who used the API, and when

    @reason_action("Revoke the selected keys (cannot be undone)")
    def revoke_selected(self, request, queryset, reason):
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key, actor=request.user, reason=reason, source="admin")
        self.message_user(request, f"Revoked {len(queryset)} key(s).", messages.SUCCESS)

    @reason_action("Expire the selected keys now")
    def expire_selected(self, request, queryset, reason):
        for api_key in queryset:
            services.api_key_expire(api_key=api_key, actor=request.user, reason=reason, source="admin")
        self.message_user(request, f"Expired {len(queryset)} key(s).", messages.SUCCESS)

    @action(description="Revoke", url_path="revoke", permissions=["change"])
    def revoke_detail(self, request, object_id):
        return self._confirm(
            request,
            object_id,
            title="Revoke this key",
            explanation="Applications using it are refused from their next request. This cannot be undone.",
            apply=services.api_key_revoke,
            done="Revoked {}.",
        )

    @action(description="Expire now", url_path="expire", permissions=["change"])
    def expire_detail(self, request, object_id):
        return self._confirm(
            request,
            object_id,
            title="Expire this key now",
            explanation="Applications using it are refused from their next request.",
            apply=services.api_key_expire,
            done="{} has expired.",
        )

    def _confirm(self, request, object_id, *, title, explanation, apply, done):
        """A detail action changes nothing on GET: it asks why first, and acts on a POST that
        says why (without a reason, the page comes back with the error and nothing changes)."""
        # Links to the key's pages quote its primary key as the admin does ("$" → "_24").
        api_key = self.get_object(request, unquote(object_id))
        if api_key is None or not self.has_change_permission(request, api_key):
            raise PermissionDenied
        back = reverse("admin:api_apikey_change", args=[quote(api_key.pk)])
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            apply(api_key=api_key, actor=request.user, reason=form.cleaned_data[REASON_FIELD], source="admin")
            self.message_user(request, done.format(api_key), messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "explanation": explanation,
            "opts": self.model._meta,
            "original": api_key,
            "back": back,
            "form": form,
        }
        return TemplateResponse(request, "admin/api/apikey/confirm.html", context)
