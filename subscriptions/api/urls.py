from django.urls import path

from subscriptions.api import views

urlpatterns = [
    path("customers", views.CustomerListView.as_view(), name="customer-list"),
    path("customers/<str:external_id>", views.CustomerDetailView.as_view(), name="customer-detail"),
    path(
        "customers/<str:external_id>/entitlements",
        views.CustomerEntitlementsView.as_view(),
        name="customer-entitlements",
    ),
    path(
        "customers/<str:external_id>/entitlements/<slug:feature_key>",
        views.CustomerFeatureEntitlementView.as_view(),
        name="customer-entitlement",
    ),
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
