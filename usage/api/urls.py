from django.urls import path

from checks.fast import fast_or, unlisted
from usage.api import fast, views

# A consume sits on an application's hot path as a check does: config/urls.py routes it first,
# at its full path (`top_urlpatterns`), as it routes the checks; the same view stays here, in the
# API's namespace, for `reverse` and the OpenAPI schema.
consume = fast_or(views.ConsumeView, fast.consume)

urlpatterns = [
    path(
        "customers/<str:external_id>/entitlements/<slug:feature_key>/consume",
        consume,
        name="customer-entitlement-consume",
    ),
    path("customers/<str:external_id>/usage", views.UsageView.as_view(), name="customer-usage"),
]

top_urlpatterns = [
    path("api/v1/customers/<str:external_id>/entitlements/<slug:feature_key>/consume", unlisted(consume)),
]
