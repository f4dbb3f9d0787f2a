"""The database cannot be reached: the API says so in JSON (503, `Retry-After`), as it does
when Redis is down, so applications apply the feature's fallback instead of parsing an HTML page.
A real server process (gunicorn, the production entry point) is pointed at a closed port."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from tests import servers


@pytest.fixture
def server_without_database(tmp_path):
    closed = servers.free_port()  # nothing listens there
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed}/entitle",
        "ENTITLE_TEST_RUN": f"dbdown-{os.getpid()}",
    }
    server = servers.start(tmp_path, "gunicorn", threads=1, env=env)
    yield server.url
    server.stop()


def _send(url: str, method: str = "GET", body: bytes | None = None, key: str = "abcd1234.secretsecret"):
    request = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={
            "Authorization": f"Api-Key {key}",
            "X-Change-Reason": "Outage drill",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/customers/acme/entitlements", None),
        ("GET", "/api/v1/customers/acme/entitlements/max-members", None),
        ("GET", "/api/v1/customers", None),
        ("PUT", "/api/v1/customers/acme", b'{"name": "Acme"}'),
    ],
)
def test_database_unreachable__json_503_with_retry_after(server_without_database, method, path, body):
    status, headers, content = _send(server_without_database + path, method, body)

    assert status == 503, content[:500]
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Retry-After"]) > 0
    assert b'"code":"service_unavailable"' in content
    assert b"fallback" in content
