"""Lifecycle sweeps: what changes on its own with time."""

from celery import shared_task

from subscriptions.services import expire_ended_trials


@shared_task(name="subscriptions.expire_trials", ignore_result=True)
def expire_trials() -> int:
    """Mark trials past their end as expired (resolution already treats them as over)."""
    return expire_ended_trials()
