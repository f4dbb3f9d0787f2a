from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from simple_history.signals import post_create_historical_record, pre_create_historical_record

        from audit.history import stamp_history_row
        from audit.models import write_audit_entry
        from audit.records import watch_role_memberships

        pre_create_historical_record.connect(stamp_history_row, dispatch_uid="audit-stamp")
        post_create_historical_record.connect(write_audit_entry, dispatch_uid="audit-log")
        watch_role_memberships()
