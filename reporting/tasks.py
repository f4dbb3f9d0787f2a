"""Celery tasks of reporting. Thin: they call the service."""

from celery import shared_task

from reporting.services import usage_snapshot_refresh


@shared_task(name="reporting.refresh_feature_usage", ignore_result=True)
def refresh_feature_usage() -> int | None:
    """Recompute the dashboard's feature usage (beat runs this every few minutes); the id of
    the new snapshot, or None when another refresh was already running."""
    snapshot = usage_snapshot_refresh()
    return snapshot.pk if snapshot else None
