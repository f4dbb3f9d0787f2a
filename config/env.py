"""The only module that reads the process environment.

Every setting that differs between the demo, the test suite and production comes through
here, so `grep env.` shows the whole configuration surface.
"""

from __future__ import annotations

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def text(name: str, default: str | None = None) -> str | None:
    """A string variable, or `default` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def required(name: str) -> str:
    """A variable production cannot start without."""
    value = text(name)
    if value is None:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return value


def flag(name: str, default: bool = False) -> bool:
    """A yes/no variable: 1, true, yes and on are yes."""
    value = text(name)
    if value is None:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def integer(name: str, default: int) -> int:
    value = text(name)
    return default if value is None else int(value)


def csv(name: str, default: str = "") -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [part.strip() for part in (text(name, default) or "").split(",") if part.strip()]


def database(default_url: str) -> dict:
    """`DATABASE_URL`, or the given default, as a Django DATABASES entry."""
    return dj_database_url.parse(text("DATABASE_URL", default_url), conn_max_age=60)
