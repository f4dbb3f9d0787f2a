"""Fixtures of the check engine's tests: the API tests' keys and clients (`tests/api`), and a
count of the Redis round trips a request makes."""

from __future__ import annotations

import threading

import pytest
import redis

from tests.api.conftest import (  # fixtures, shared with the API tests
    _fresh_process_memory,
    api,
    api_for,
    demo_seeded_once_per_module,
    listener_down,
    live_revisions,
    reader,
    superuser,
)


class RoundTrips:
    """Counts Redis round trips (each packed send is one: a pipeline is a single one)."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def redis_round_trips(monkeypatch):
    """Round trips made by the test's own thread (the revision listener pings on its own)."""
    counter = RoundTrips()
    original = redis.connection.AbstractConnection.send_packed_command
    caller = threading.get_ident()

    def counting(self, command, check_health=True):
        if threading.get_ident() == caller:
            counter.count += 1
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return counter


__all__ = [
    "_fresh_process_memory",
    "api",
    "api_for",
    "demo_seeded_once_per_module",
    "listener_down",
    "live_revisions",
    "reader",
    "superuser",
]
