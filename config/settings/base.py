"""Settings shared by every environment. Integrations live in their own modules below."""

from config import env
from config.settings.base_paths import BASE_DIR, VAR_DIR

SECRET_KEY = env.text("SECRET_KEY", "entitle-demo-only-not-secret")
DEBUG = env.flag("DEBUG", False)
ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    # unfold and each of its contrib apps must precede the app they restyle. unfold's basic app
    # config: its default one replaces `admin.site` with a plain UnfoldAdminSite (no staff MFA).
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.inlines",
    "unfold.contrib.import_export",
    "unfold.contrib.guardian",
    "unfold.contrib.simple_history",
    "config.admin.EntitleAdminConfig",  # django.contrib.admin with staff MFA
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_countries",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "axes",
    "guardian",
    "simple_history",
    "import_export",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "audit",
    "catalog",
    "segments",
    "subscriptions",
    "usage",
    "api",
    "checks",
    "reporting",
]

MIDDLEWARE = [
    "checks.middleware.ReadAheadMiddleware",  # first: the check's round trip goes out before the rest runs
    "django.middleware.security.SecurityMiddleware",
    "config.csp.PagesCSPMiddleware",  # Content-Security-Policy (config/settings/csp.py)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",  # CSP_NONCE, for an inline script a page needs
            ],
        },
    },
]

DATABASES = {"default": env.database(f"sqlite:///{VAR_DIR / 'entitle.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.text("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "entitle",
        }
    }
else:
    # The demo runs web and worker as separate processes: they share a file cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out logins
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One way to show a time everywhere in the admin, with its zone said: "2026-12-26 23:00 UTC".
# Django's locale formats win over DATETIME_FORMAT & co., so ours live in a format module.
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the admin shell's own files (favicon)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"

# Admin changelists count their rows up to this many past the page shown, then say "more than"
# (config.admin.CountLimitedPaginator): an exact count of a big table costs more than the page.
ENTITLE_ADMIN_COUNT_LIMIT = 10_000

# Staff accounts: lock out after repeated failures (django-axes), optional TOTP (django-otp).
ENTITLE_REQUIRE_MFA = env.flag("ENTITLE_REQUIRE_MFA", False)
AXES_FAILURE_LIMIT = env.integer("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # one account from one address
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
OTP_TOTP_ISSUER = "Entitle"

from config.settings.celery import *  # noqa: E402, F403
from config.settings.csp import *  # noqa: E402, F403
from config.settings.drf import *  # noqa: E402, F403
from config.settings.guardian import *  # noqa: E402, F403
from config.settings.history import *  # noqa: E402, F403
from config.settings.unfold import *  # noqa: E402, F403
