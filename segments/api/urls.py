from django.urls import path

from segments.api import views

urlpatterns = [
    path("segments", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/<slug:key>", views.SegmentDetailView.as_view(), name="segment-detail"),
]
