"""django-guardian: object permissions for tagged features and segments."""

ANONYMOUS_USER_NAME = None  # no anonymous user row: the admin and the API are for known people
GUARDIAN_RAISE_403 = True
