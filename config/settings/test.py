"""The test suite: the PostgreSQL and Redis on localhost, as in production.

Each test process gets its own database and cache prefix, so several runs (a developer's and
CI's, or pytest-xdist workers) never trip over each other.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/entitle")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from config.settings.base import *  # noqa: F403

_RUN = os.environ.get("ENTITLE_TEST_RUN") or str(os.getpid())
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

DATABASES = {"default": env.database("")}  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": f"test_entitle_{_RUN}"}
CACHES["default"]["KEY_PREFIX"] = f"entitle-test-{_RUN}-{_WORKER}"  # noqa: F405
ENTITLE_TEST_RUN = _RUN
CELERY_TASK_DEFAULT_QUEUE = f"entitle-test-{_RUN}-{_WORKER}"  # workers started by tests listen here
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False

# Tests never collect static files (the live server serves them from the apps' folders), but
# whitenoise reads STATIC_ROOT when the middleware starts and warns when it is missing: give
# it an empty folder of its own, outside the tree that `collectstatic` fills.
STATIC_ROOT = Path(tempfile.gettempdir()) / "entitle-test-static"
STATIC_ROOT.mkdir(exist_ok=True)
