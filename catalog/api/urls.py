from django.urls import path

from catalog.api import views

urlpatterns = [
    path("features", views.FeatureListView.as_view(), name="feature-list"),
    path("features/<slug:key>", views.FeatureDetailView.as_view(), name="feature-detail"),
    path("features/<slug:key>/rules", views.FeatureRulesView.as_view(), name="feature-rules"),
    path("items", views.ItemListView.as_view(), name="item-list"),
    path("items/<slug:key>", views.ItemDetailView.as_view(), name="item-detail"),
    path("items/<slug:key>/supersede", views.ItemSupersedeView.as_view(), name="item-supersede"),
    path(
        "items/<slug:item_key>/entitlements/<slug:feature_key>",
        views.ItemEntitlementView.as_view(),
        name="item-entitlement",
    ),
]
