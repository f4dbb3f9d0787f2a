"""The admin site: unfold's face, and staff MFA (django-otp) when ENTITLE_REQUIRE_MFA is on."""

from django.conf import settings
from django.contrib.admin.apps import AdminConfig
from unfold.sites import UnfoldAdminSite


class EntitleAdminSite(UnfoldAdminSite):
    """Requires a verified second factor (TOTP) of every staff user when MFA is required;
    the login form then asks for the device and the token (templates/admin/login.html)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.ENTITLE_REQUIRE_MFA:
            from django_otp.admin import OTPAdminAuthenticationForm

            self.login_form = OTPAdminAuthenticationForm

    def has_permission(self, request):
        allowed = super().has_permission(request)
        if allowed and settings.ENTITLE_REQUIRE_MFA:
            return request.user.is_verified()
        return allowed


class EntitleAdminConfig(AdminConfig):
    default_site = "config.admin.EntitleAdminSite"
