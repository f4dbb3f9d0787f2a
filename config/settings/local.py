"""The demo and local development: no services needed (SQLite, file cache, filesystem broker)
unless DATABASE_URL / REDIS_URL say otherwise."""

from config.settings.base import *  # noqa: F403

DEBUG = env.flag("DEBUG", True)  # noqa: F405
