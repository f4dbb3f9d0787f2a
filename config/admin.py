"""The admin site: unfold's face, staff MFA (django-otp) when ENTITLE_REQUIRE_MFA is on, and the
changelists' count that stops where nobody pages any more."""

from django.conf import settings
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from unfold.sites import UnfoldAdminSite


class EntitleAdminSite(UnfoldAdminSite):
    """Requires a verified second factor (TOTP) of every staff user when MFA is required;
    the login form then asks for the code, and for the device when there are several
    (templates/admin/login.html)."""

    # An empty value reads as the resolved tables write it ("—"), not as Django's "-".
    empty_value_display = "—"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.ENTITLE_REQUIRE_MFA:
            self.login_form = staff_otp_login_form()

    def has_permission(self, request):
        allowed = super().has_permission(request)
        if allowed and settings.ENTITLE_REQUIRE_MFA:
            return request.user.is_verified()
        return allowed


def staff_otp_login_form():
    """django-otp's admin login form in plain words, asking which device only when the member
    of staff has more than one: with a single confirmed device, username, password and code
    log in at once (django-otp 1.7 otherwise refuses a code until a device is picked). The
    device is still looked up among the user's own, after the password matched."""
    from django import forms
    from django_otp import devices_for_user
    from django_otp.admin import OTPAdminAuthenticationForm
    from unfold.widgets import BASE_INPUT_CLASSES, SELECT_CLASSES

    class StaffOTPLoginForm(OTPAdminAuthenticationForm):
        otp_error_messages = {
            **OTPAdminAuthenticationForm.otp_error_messages,
            "token_required": "Enter the code from your authenticator app.",
            "invalid_token": "That code is not right or was used already: enter the code your app shows now.",
            "device_required": "Choose the device whose code you entered.",
        }
        otp_device = forms.CharField(required=False, widget=forms.Select, label="Device")
        otp_token = forms.CharField(
            required=False,
            label="Code from your authenticator app",
            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        )

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["username"].widget.attrs["autofocus"] = ""
            for name in ("username", "password", "otp_token"):  # unfold's look, as its own login form
                self.fields[name].widget.attrs["class"] = " ".join(BASE_INPUT_CLASSES)
            self.fields["otp_device"].widget.attrs["class"] = " ".join(SELECT_CLASSES)

        def _chosen_device(self, user):
            device = super()._chosen_device(user)
            if device is None and not self.cleaned_data.get("otp_device"):
                devices = list(devices_for_user(user, confirmed=True, for_verify=True))
                if len(devices) == 1:
                    return devices[0]
            return device

    return StaffOTPLoginForm


class EntitleAdminConfig(AdminConfig):
    """django.contrib.admin on `EntitleAdminSite`. unfold must be installed with its basic app
    config (`unfold.apps.BasicAppConfig`): its default one swaps `admin.site` for a plain
    `UnfoldAdminSite` when the apps load, and every model would then be registered on a site
    that lets staff in with a password alone. Starting up on any other site is refused."""

    default_site = "config.admin.EntitleAdminSite"

    def ready(self) -> None:
        from django.contrib import admin

        if not isinstance(admin.site, EntitleAdminSite):
            raise ImproperlyConfigured(
                f"The admin site is {type(admin.site).__name__}, not EntitleAdminSite: install unfold "
                'as "unfold.apps.BasicAppConfig", not "unfold".'
            )
        super().ready()
        build_changelist_headers_once()


def build_changelist_headers_once() -> None:
    """unfold 0.91 builds every column header of a changelist again for each row (its narrow
    layout labels each cell with its header), rendering the select-all checkbox 50 times a
    page: a fifth of a changelist's time. One changelist's headers are the same for all its
    rows: build them once per changelist. If unfold renames the function this fails loudly at
    start-up (tests/config/test_admin_site.py checks the headers are built once per page)."""
    from unfold.templatetags import unfold_list

    build = unfold_list.result_headers
    if getattr(build, "once_per_changelist", False):
        return

    def result_headers(cl):
        headers = cl.__dict__.get("_entitle_headers")
        if headers is None:
            headers = cl.__dict__["_entitle_headers"] = list(build(cl))
        return iter(headers)

    result_headers.once_per_changelist = True
    unfold_list.result_headers = result_headers


class CountLimitedPaginator(Paginator):
    """Counts a changelist's rows only as far as anyone will page: up to
    `settings.ENTITLE_ADMIN_COUNT_LIMIT` rows past the page shown (10,000 by default).

    An exact COUNT(*) of a filtered audit log (371k rows) took 70-180 ms on every page, more
    than the rest of the page together, to print a number nobody reads closely. Beyond the
    limit the list says "more than N" and offers the pages it knows of; each page further on
    counts further, so every row stays reachable. Below the limit nothing changes: the count
    is exact. The counting query is the same on PostgreSQL and on the demo's SQLite.
    """

    template_name = "admin/pagination_count_limited.html"

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *, page=1, limit=None):
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.limit = settings.ENTITLE_ADMIN_COUNT_LIMIT if limit is None else limit
        # Count past the page asked for, so that the pages after it are known.
        self.counted_up_to = (max(page, 1) - 1) * self.per_page + self.limit
        self.limited = False

    @cached_property
    def count(self) -> int:
        if not hasattr(self.object_list, "query"):  # a list: its length is free
            return super().count
        found = self.object_list.order_by()[: self.counted_up_to + 1].count()
        self.limited = found > self.counted_up_to
        return found

    def get_elided_page_range(self, number=1, *, on_each_side=3, on_ends=2):
        """Without the last pages when the count stopped early: they are not the last."""
        pages = list(super().get_elided_page_range(number, on_each_side=on_each_side, on_ends=on_ends))
        if self.limited:
            while pages and pages[-1] != self.ELLIPSIS and pages[-1] > number + on_each_side:
                pages.pop()
            if pages and pages[-1] != self.ELLIPSIS:
                pages.append(self.ELLIPSIS)
        return pages


class CountLimitedChangelist:
    """Model admin mixin: the changelist counts with `CountLimitedPaginator`."""

    paginator = CountLimitedPaginator

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        from django.contrib.admin.views.main import PAGE_VAR  # not at import: this module loads with the apps

        try:
            page = int(request.GET.get(PAGE_VAR, 1))
        except ValueError:
            page = 1  # the changelist itself treats a bad page number the same way
        return self.paginator(queryset, per_page, orphans, allow_empty_first_page, page=page)
