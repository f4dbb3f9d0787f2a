"""Fixtures of the usage tests: the API tests' keys and clients (`tests/api`)."""

from __future__ import annotations

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
from tests.checks.conftest import redis_round_trips

__all__ = [
    "_fresh_process_memory",
    "api",
    "api_for",
    "demo_seeded_once_per_module",
    "listener_down",
    "live_revisions",
    "reader",
    "redis_round_trips",
    "superuser",
]
