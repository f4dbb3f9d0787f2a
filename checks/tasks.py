"""Celery tasks of the check engine. Thin: the work is in `checks.counting`."""

from __future__ import annotations

from celery import shared_task

from checks import counting


@shared_task(name="api.flush_check_counts", ignore_result=True)
def flush_check_counts() -> dict[str, int]:
    """Move the check counts kept in Redis into `CheckCount` (exactly once per batch), copy
    the API keys' last-used times to their rows, and forget batch ids older than a week.
    Run it every minute or so (beat)."""
    applied = counting.flush()
    counting.prune_batches()
    return applied
