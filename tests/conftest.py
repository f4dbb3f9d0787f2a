"""Fixtures shared by the whole suite: real PostgreSQL and Redis (config.settings.test)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from audit.context import change_context


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache (the test settings give this run its own prefix)."""
    cache.clear()
    yield


@pytest.fixture
def audited():
    """Run the test body's writes in a change context, as system code must."""
    with change_context(actor=None, reason="Test fixture data.", source="shell") as context:
        yield context


@pytest.fixture
def demo(db):
    """The DESIGN §9 demo catalogue, loaded by the real command."""
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
