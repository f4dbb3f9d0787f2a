"""Celery tasks of change control. Thin: they call the scheduling module."""

from celery import shared_task

from audit.scheduling import sweep_due_changes


@shared_task(name="audit.sweep_scheduled_changes", ignore_result=True)
def sweep_scheduled_changes() -> int:
    """Apply the scheduled changes that are due (beat runs this every few seconds)."""
    return sweep_due_changes()
