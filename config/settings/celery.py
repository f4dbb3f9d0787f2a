"""Celery: Redis in production, a filesystem broker in the demo.

Production (docs/operations.md): late acks, one task prefetched, a task whose worker died is
redelivered, and no long ETAs anywhere (scheduled changes are rows swept by beat).
"""

from config import env
from config.settings.base_paths import VAR_DIR

_redis = env.text("REDIS_URL")

if _redis:
    CELERY_BROKER_URL = env.text("CELERY_BROKER_URL", _redis)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.integer("CELERY_VISIBILITY_TIMEOUT", 300)}
else:
    CELERY_BROKER_URL = "filesystem://"
    _queue = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "out"),
        "data_folder_out": str(_queue / "out"),
        "processed_folder": str(_queue / "processed"),
        "store_processed": False,
        # kombu's exchange tables (worker control, pidbox): "./control" of the working directory
        # unless told otherwise, i.e. a folder in the repository.
        "control_folder": str(_queue / "control"),
    }
    # kombu writes into these folders but never makes them: whoever loads the settings (web,
    # worker, beat, a command) finds them there.
    for _folder in ("out", "processed", "control"):
        (_queue / _folder).mkdir(parents=True, exist_ok=True)

CELERY_TASK_DEFAULT_QUEUE = env.text("CELERY_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Periodic sweeps (beat). Scheduled changes are rows, never long ETAs (docs/audit.md).
CELERY_BEAT_SCHEDULE = {
    "apply-due-scheduled-changes": {
        "task": "audit.sweep_scheduled_changes",
        "schedule": float(env.integer("ENTITLE_SWEEP_SECONDS", 10)),
    },
    "expire-ended-trials": {"task": "subscriptions.expire_trials", "schedule": 60.0},
    "flush-check-counts": {"task": "api.flush_check_counts", "schedule": 60.0},
    # The dashboard's precomputed figures (reporting): how fresh they are at worst.
    "refresh-feature-usage": {
        "task": "reporting.refresh_feature_usage",
        "schedule": float(env.integer("ENTITLE_REPORTING_SECONDS", 300)),
    },
}
