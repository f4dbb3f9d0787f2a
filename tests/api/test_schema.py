"""The OpenAPI schema says what the API does: schemathesis generates requests from
/api/schema/ for every operation (valid and invalid ones) and sends them in process, with a
write key of a superuser over the demo data. No answer may be a server error, and every
answer must conform to the schema: status code, content type, headers and body."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import make_key

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 32
MIN_CASES = 1000


def test_schema__served_as_openapi_3_with_every_endpoint(db, client):
    schema = client.get("/api/schema/?format=json").json()

    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/api/v1/customers",
        "/api/v1/customers/{external_id}",
        "/api/v1/customers/{external_id}/entitlements",
        "/api/v1/customers/{external_id}/entitlements/{feature_key}",
        "/api/v1/features",
        "/api/v1/features/{key}",
        "/api/v1/features/{key}/rules",
        "/api/v1/items",
        "/api/v1/items/{key}",
        "/api/v1/items/{key}/supersede",
        "/api/v1/items/{item_key}/entitlements/{feature_key}",
        "/api/v1/overrides/{override_id}",
        "/api/v1/segments",
        "/api/v1/segments/{key}",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/{external_id}",
        "/api/v1/subscriptions/{external_id}/overrides",
    }
    assert client.get("/api/docs/").status_code == 200


@pytest.fixture
def wsgi_app():
    """Django's WSGI application, called in process inside the test's transaction: like the
    test client, it must not close the database connection at the end of each request."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schemathesis__generated_requests__no_server_error_and_every_answer_conforms(
    demo, wsgi_app, django_capture_on_commit_callbacks
):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    schema.config.generation.update(
        allow_x00=False,
        allow_extra_parameters=False,  # unknown query parameters
        with_security_parameters=False,  # the key is ours, below
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    )
    key = make_key(User.objects.get(username="admin"), "write", rate_limit=1_000_000)
    headers = {"Authorization": f"Api-Key {key}"}
    figures: Counter = Counter()
    failures: list[str] = []
    started = time.monotonic()

    def run_operation(operation) -> None:
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case):
            figures["cases"] += 1
            with django_capture_on_commit_callbacks(execute=True):
                response = case.call(headers=headers)
            figures[f"status {response.status_code}"] += 1
            if response.status_code >= 500:
                figures["server errors"] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as error:  # collect them all, then report
                figures["failures"] += 1
                failures.append(f"{operation.label}: {case.as_curl_command(headers=headers)}\n{error}"[:3000])

        run()

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        run_operation(operation)
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {len(operations)} operations, {figures['cases']} cases, "
        f"{figures['failures']} failures, {figures['server errors']} server errors, {elapsed:.1f} s; "
        + ", ".join(f"{k}: {v}" for k, v in sorted(figures.items()) if k.startswith("status"))
    )
    assert failures == [], "\n\n".join(failures[:200])
    assert figures["server errors"] == 0
    assert figures["cases"] >= MIN_CASES
    assert len(operations) >= 32  # every documented operation (docs/api.md)
