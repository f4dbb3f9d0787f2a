from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from simple_history.signals import pre_create_historical_record

        from audit.history import stamp_history_row

        pre_create_historical_record.connect(stamp_history_row, dispatch_uid="audit-stamp")
