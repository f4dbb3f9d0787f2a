from django.urls import path

from checks.fast import fast_or
from usage.api import fast, views

urlpatterns = [
    path(
        "customers/<str:external_id>/entitlements/<slug:feature_key>/consume",
        fast_or(views.ConsumeView, fast.consume),
        name="customer-entitlement-consume",
    ),
    path("customers/<str:external_id>/usage", views.UsageView.as_view(), name="customer-usage"),
]
