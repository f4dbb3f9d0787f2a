"""Fixtures shared by the whole suite: real PostgreSQL and Redis (config.settings.test)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from audit.context import change_context


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache. Only this run's keys are removed (the test
    settings give each run its own prefix): FLUSHDB would wipe other runs' keys too."""
    client = cache._cache.get_client(write=True)
    prefix = cache.make_key("")
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
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


@pytest.fixture
def restore_roles():
    """Transactional tests (live server, Celery workers) start from empty tables: put back what
    the data migration made (roles and starting tags), in a change context as any write."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("catalog.migrations.0002_roles_and_tags")
    with change_context(
        actor=None, reason="Test setup: roles and tags of the data migration.", source="shell"
    ):
        migration.create_roles_and_tags(apps, None)


@pytest.fixture
def superuser(client):
    """A superuser, logged in on the test client."""
    from tests import factories as f

    user = f.SuperuserFactory()
    client.force_login(user)
    return user
