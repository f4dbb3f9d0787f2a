"""Django REST framework, the OpenAPI schema, and the API's own knobs (keys, throttling,
body size, the check endpoint's caches)."""

from config import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.KeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "toolkit.rest.schema.EntitleAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["toolkit.rest.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["toolkit.rest.parsers.OrjsonParser"],
    "EXCEPTION_HANDLER": "toolkit.rest.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    # Times are ISO 8601 in UTC (docs/api.md): with TIME_ZONE = "UTC" DRF writes them with a "Z".
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}

# A body above 1 MiB is refused (413) before it is parsed; Django's own forms use the same limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Requests per minute and per key, unless the key sets its own `rate_limit`.
API_RATE_PER_MINUTE = env.integer("API_RATE_PER_MINUTE", 60_000)
# Wrong API keys one client (IP) may send a minute before it is answered 429 (api.authentication).
# Behind proxies, set REST_FRAMEWORK["NUM_PROXIES"], or every client shares the proxy's address.
API_AUTH_FAILURES_PER_MINUTE = env.integer("API_AUTH_FAILURES_PER_MINUTE", 30)
# Memory each web process gives resolved answers (an LRU in front of the shared cache);
# API_SNAPSHOTS_IN_MEMORY=false serves every check from Redis (the benchmark's Redis tier).
API_SNAPSHOT_MEMORY_MB = env.integer("API_SNAPSHOT_MEMORY_MB", 128)
API_SNAPSHOTS_IN_MEMORY = env.flag("API_SNAPSHOTS_IN_MEMORY", True)
# Each web process follows revision bumps over Redis pub/sub, so a warm check needs no round
# trip (checks.listener). Off: every check reads the revisions in its one round trip, as a safe fallback.
API_LIVE_REVISIONS = env.flag("API_LIVE_REVISIONS", True)
# Longest a resolved snapshot stays in the shared cache when nothing ends it sooner.
API_SNAPSHOT_TTL = env.integer("API_SNAPSHOT_TTL", 24 * 3600)

SPECTACULAR_SETTINGS = {
    "TITLE": "Entitle API",
    "DESCRIPTION": (
        "Entitlement checks for applications and catalog writes for billing sync.\n\n"
        "Authenticate with `Authorization: Api-Key <key>`. Every write needs an `X-Change-Reason` "
        'header, recorded in history. Errors are `{"detail": ..., "code": ...}`, or DRF\'s '
        "field errors for an invalid body. Times are ISO 8601 in UTC."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: the demo has no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FeatureKindEnum": "catalog.models.Feature.Kind",
        "FeatureStatusEnum": "catalog.models.Feature.Status",
        "FallbackEnum": "catalog.models.Feature.Fallback",
        "ItemKindEnum": "catalog.models.Item.Kind",
        "ItemStatusEnum": "catalog.models.Item.Status",
        "SubscriptionStatusEnum": "subscriptions.models.Subscription.Status",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}
