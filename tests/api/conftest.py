"""Fixtures of the API tests (and of the check engine's, `tests/checks`): keys, a client that
speaks the API, and this process's revision listener up or down. Every request runs as in
production: its on-commit callbacks (cache revision bumps) run when it ends."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from api import keys, services
from api.models import APIKey
from checks import snapshots
from checks.listener import known, listener
from checks.store import hot_mget

REASON = "Billing sync, ticket OPS-42"


@pytest.fixture(scope="module")
def demo_seeded_once_per_module() -> bool:
    """The API tests' writes stay in their savepoints: `demo` is seeded once per module."""
    return True


@pytest.fixture(autouse=True)
def _fresh_process_memory():
    """Each test starts as a fresh web process: nothing remembered in memory."""
    snapshots.forget_all()
    keys.forget_all()
    yield
    snapshots.forget_all()
    keys.forget_all()


@dataclass
class Api:
    """A test client for `/api/v1/` with a key; writes carry a reason unless told not to."""

    client: Client
    key: str
    capture: Any
    last: Any = field(default=None)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        reason: str | None = REASON,
        headers: dict | None = None,
        key: str | None = "default",
    ):
        extra = dict(headers or {})
        key = self.key if key == "default" else key
        if key is not None:
            extra["HTTP_AUTHORIZATION"] = f"Api-Key {key}"
        if reason is not None and method not in ("GET", "HEAD"):
            extra["HTTP_X_CHANGE_REASON"] = reason
        if path.startswith("http://testserver"):
            path = path.removeprefix("http://testserver")
        url = path if path.startswith("/") else f"/api/v1/{path}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        with self.capture(execute=True):
            response = self.client.generic(method, url, data=data, content_type="application/json", **extra)
        self.last = response
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def make_key(owner, scope: str = "write", **kwargs) -> str:
    _, raw_key = services.api_key_create(
        name=f"{owner.username}-{scope}",
        owner=owner,
        scope=scope,
        actor=None,
        reason="A key for the API tests",
        source="shell",
        **kwargs,
    )
    return raw_key


@pytest.fixture
def superuser(db):
    from tests.factories import SuperuserFactory

    return SuperuserFactory()


@pytest.fixture
def api(db, superuser, django_capture_on_commit_callbacks):
    """A write-scope key of a superuser."""
    return Api(Client(), make_key(superuser, "write"), django_capture_on_commit_callbacks)


@pytest.fixture
def api_for(db, django_capture_on_commit_callbacks):
    """`api_for(user, scope)`: a client with a new key of that user."""

    def build(user, scope: str = "write", **kwargs) -> Api:
        return Api(Client(), make_key(user, scope, **kwargs), django_capture_on_commit_callbacks)

    return build


@pytest.fixture
def reader(db, django_capture_on_commit_callbacks):
    """A read-scope key of a service account with no permissions at all."""
    from tests.factories import UserFactory

    account = UserFactory(username="checker-app", is_staff=False)
    return Api(Client(), make_key(account, "read"), django_capture_on_commit_callbacks)


@pytest.fixture
def live_revisions():
    """This process's revision listener, subscribed and healthy (checks.listener), and this
    thread's own Redis connection made (checks.store.hot_mget: its handshake is four round
    trips, once)."""
    listener.ensure()
    deadline = time.monotonic() + 10
    while not known.healthy():
        assert time.monotonic() < deadline, "the revision listener did not subscribe"
        time.sleep(0.01)
    hot_mget(["connect"])
    return known


@pytest.fixture
def listener_down(monkeypatch):
    """As if this process's revision listener had lost Redis: nothing is trusted without a
    round trip."""
    monkeypatch.setattr(known, "healthy", lambda: False)


__all__ = ["REASON", "APIKey", "Api", "make_key"]
