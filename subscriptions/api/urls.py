from django.urls import path

from checks.fast import unlisted, with_fast_path
from subscriptions.api import views

# The entitlement checks take nearly all the traffic, and each pattern and include tried
# before a match costs every request: config/urls.py routes them first of all, at their full
# path (`top_urlpatterns`). The same views stay in the API's namespace (`check_urlpatterns`, in
# api/urls.py), where `reverse("api:customer-entitlements")` and the OpenAPI schema find them;
# only the top-level routes ever match. (BENCHMARKS.md: a nested route cost a check 9 µs.)
entitlements = with_fast_path(views.CustomerEntitlementsView, single=False)
entitlement = with_fast_path(views.CustomerFeatureEntitlementView, single=True)

check_urlpatterns = [
    path("customers/<str:external_id>/entitlements", entitlements, name="customer-entitlements"),
    path(
        "customers/<str:external_id>/entitlements/<slug:feature_key>",
        entitlement,
        name="customer-entitlement",
    ),
]

top_urlpatterns = [
    path("api/v1/customers/<str:external_id>/entitlements", unlisted(entitlements)),
    path("api/v1/customers/<str:external_id>/entitlements/<slug:feature_key>", unlisted(entitlement)),
]

urlpatterns = [
    path("customers", views.CustomerListView.as_view(), name="customer-list"),
    path("customers/<str:external_id>", views.CustomerDetailView.as_view(), name="customer-detail"),
    path("subscriptions", views.SubscriptionListView.as_view(), name="subscription-list"),
    path(
        "subscriptions/<str:external_id>", views.SubscriptionDetailView.as_view(), name="subscription-detail"
    ),
    path(
        "subscriptions/<str:external_id>/overrides",
        views.SubscriptionOverridesView.as_view(),
        name="subscription-overrides",
    ),
    path("overrides/<int:override_id>", views.OverrideDetailView.as_view(), name="override-detail"),
]
