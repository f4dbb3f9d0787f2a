from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        import api.authentication  # noqa: F401  (registers the key scheme with drf-spectacular)
        from api.keys import keys_changed
        from api.models import APIKey
        from audit.records import also_recorded

        also_recorded(APIKey)  # key writes are in the audit log (api.services)

        # A key acts as its owner: when an owner is deactivated or removed, every process
        # must re-read the keys it remembers (api.keys). Cache invalidation only.
        def owner_changed(sender, update_fields=None, **kwargs):
            if update_fields is not None and set(update_fields) <= {"last_login"}:
                return  # a login changes nothing a key depends on

            keys_changed()

        user_model = get_user_model()
        post_save.connect(owner_changed, sender=user_model, weak=False, dispatch_uid="api-key-owner-saved")
        post_delete.connect(
            owner_changed, sender=user_model, weak=False, dispatch_uid="api-key-owner-deleted"
        )
