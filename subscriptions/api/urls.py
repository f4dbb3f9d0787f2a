from django.urls import path

from api.fastcheck import with_fast_path
from subscriptions.api import views

# The entitlement checks: api/urls.py routes them before every other API path, since they
# take nearly all the traffic (each pattern tried before a match costs every request).
check_urlpatterns = [
    path(
        "customers/<str:external_id>/entitlements",
        with_fast_path(views.CustomerEntitlementsView, single=False),
        name="customer-entitlements",
    ),
    path(
        "customers/<str:external_id>/entitlements/<slug:feature_key>",
        with_fast_path(views.CustomerFeatureEntitlementView, single=True),
        name="customer-entitlement",
    ),
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
