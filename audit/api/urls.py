from django.urls import path

from audit.api import views

urlpatterns = [
    path("scheduled-changes", views.ScheduledChangeListView.as_view(), name="scheduled-change-list"),
    path(
        "scheduled-changes/<int:pk>",
        views.ScheduledChangeDetailView.as_view(),
        name="scheduled-change-detail",
    ),
    path(
        "scheduled-changes/<int:pk>/cancel",
        views.ScheduledChangeCancelView.as_view(),
        name="scheduled-change-cancel",
    ),
]
