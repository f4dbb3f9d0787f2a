"""API keys in the admin: made here or with `manage.py create_api_key`, the key is shown
once on creation; revoke or expire from the list or the key's page. Writes go through
`api.services`, which tell every web process to re-read the key."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from rest_framework_api_key.models import APIKey as PackageAPIKey
from unfold.admin import ModelAdmin
from unfold.decorators import action

from api import services
from api.models import APIKey

# The package registers its own (unused) key model; ours, with owner and scope, replaces it.
if admin.site.is_registered(PackageAPIKey):
    admin.site.unregister(PackageAPIKey)


class APIKeyForm(forms.ModelForm):
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

    def get_fields(self, request, obj=None):
        fields = ["name", "owner", "scope", "expiry_date", "rate_limit"]
        return fields if obj is None else ["prefix", *fields, "revoked", "created", "last_used_at"]

    @admin.display(description="Usable", boolean=True)
    def is_usable(self, obj: APIKey) -> bool:
        return not obj.revoked and not obj.has_expired

    def save_model(self, request, obj, form, change):
        if change:
            services.api_key_save(api_key=obj)
            return
        created, raw_key = services.api_key_create(
            name=obj.name,
            owner=obj.owner,
            scope=obj.scope,
            expires=obj.expiry_date,
            rate_limit=obj.rate_limit,
        )
        obj.pk, obj.prefix = created.pk, created.prefix
        messages.warning(
            request,
            f"The key for {created.name} is: {raw_key} — copy it now: it is stored only as a hash "
            "and will not be shown again.",
        )

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's row says who used the API, and when

    @admin.action(description="Revoke the selected keys (cannot be undone)", permissions=["change"])
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {len(queryset)} key(s).", messages.SUCCESS)

    @admin.action(description="Expire the selected keys now", permissions=["change"])
    def expire_selected(self, request, queryset):
        for api_key in queryset:
            services.api_key_expire(api_key=api_key)
        self.message_user(request, f"Expired {len(queryset)} key(s).", messages.SUCCESS)

    @action(description="Revoke", url_path="revoke", permissions=["change"])
    def revoke_detail(self, request, object_id):
        return self._confirm(
            request,
            object_id,
            title="Revoke this key",
            explanation="Applications using it are refused from their next request. This cannot be undone.",
            apply=lambda api_key: services.api_key_revoke(api_key=api_key),
            done="Revoked {}.",
        )

    @action(description="Expire now", url_path="expire", permissions=["change"])
    def expire_detail(self, request, object_id):
        return self._confirm(
            request,
            object_id,
            title="Expire this key now",
            explanation="Applications using it are refused from their next request.",
            apply=lambda api_key: services.api_key_expire(api_key=api_key),
            done="{} has expired.",
        )

    def _confirm(self, request, object_id, *, title, explanation, apply, done):
        """A detail action changes nothing on GET: it asks first, and acts on POST."""
        api_key = self.get_object(request, object_id)
        back = reverse("admin:api_apikey_change", args=[object_id])
        if api_key is None or not self.has_change_permission(request, api_key):
            raise PermissionDenied
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": title,
                "explanation": explanation,
                "opts": self.model._meta,
                "original": api_key,
                "back": back,
            }
            return TemplateResponse(request, "admin/api/apikey/confirm.html", context)
        apply(api_key)
        self.message_user(request, done.format(api_key), messages.SUCCESS)
        return HttpResponseRedirect(back)
