from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from catalog.models import FeatureGroupPermission, FeatureUserPermission
        from catalog.permissions import watch_group_memberships, watch_object_permissions

        watch_object_permissions(FeatureUserPermission, FeatureGroupPermission)
        watch_group_memberships()
