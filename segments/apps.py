from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Targeting"

    def ready(self) -> None:
        from catalog.permissions import watch_object_permissions
        from segments.models import SegmentGroupPermission, SegmentUserPermission

        watch_object_permissions(SegmentUserPermission, SegmentGroupPermission)
