from django.urls import path

from usage.api import views

urlpatterns = [
    path(
        "customers/<str:external_id>/entitlements/<slug:feature_key>/consume",
        views.ConsumeView.as_view(),
        name="customer-entitlement-consume",
    ),
    path("customers/<str:external_id>/usage", views.UsageView.as_view(), name="customer-usage"),
]
