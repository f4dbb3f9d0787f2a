"""Production: PostgreSQL, Redis, gunicorn. Refuses to start without its secrets."""

from config.settings.base import *  # noqa: F403

SECRET_KEY = env.required("SECRET_KEY")  # noqa: F405
env.required("ALLOWED_HOSTS")  # noqa: F405
ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS")  # noqa: F405
DEBUG = False
ENTITLE_REQUIRE_MFA = env.flag("ENTITLE_REQUIRE_MFA", True)  # noqa: F405

STATIC_ROOT = env.text("STATIC_ROOT", str(STATIC_ROOT))  # noqa: F405  (collectstatic's target)
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.flag("SECURE_SSL_REDIRECT", True)  # noqa: F405
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000)  # noqa: F405
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env.csv("CSRF_TRUSTED_ORIGINS")  # noqa: F405
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO")},  # noqa: F405
}
