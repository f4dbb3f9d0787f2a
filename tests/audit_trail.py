"""Counting what the suite's writes leave behind, for tests that check a refused or
unchanged write recorded nothing (or exactly what it should)."""

from __future__ import annotations

from django.apps import apps
from simple_history.models import HistoricalChanges

from audit.models import AuditEntry


def history_rows() -> int:
    """Every record of a change: the history rows of every tracked model, and the audit log
    (which mirrors each history row and also lists changes to roles and API keys)."""
    history = sum(
        model._default_manager.count() for model in apps.get_models() if issubclass(model, HistoricalChanges)
    )
    return history + AuditEntry.objects.count()
