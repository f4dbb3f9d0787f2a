"""Fixtures shared by the whole suite: real PostgreSQL and Redis (config.settings.test)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.cache import cache
from django.db import transaction

from toolkit.change_context import change_context
from toolkit.redis import redis_client


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache. Only this run's keys are removed (the test
    settings give each run its own prefix): FLUSHDB would wipe other runs' keys too."""
    client = redis_client()
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


def _seed_demo() -> None:
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0, stdout=StringIO())


@pytest.fixture(scope="module")
def demo_seeded_once_per_module() -> bool:
    """Whether `demo` seeds once for a whole module rather than once per test. A folder's
    conftest or a module overrides this with True where its tests only read the demo or
    write inside their own savepoint (seed_demo takes a second); transactional tests need
    the default."""
    return False


@pytest.fixture(scope="module")
def _demo_for_module(demo_seeded_once_per_module, django_db_setup, django_db_blocker):
    """The demo, seeded in a transaction that stays open for the module and is rolled back
    at its end (each test's savepoint runs inside it); nothing when seeded per test."""
    if not demo_seeded_once_per_module:
        yield False
        return
    with django_db_blocker.unblock(), transaction.atomic():
        _seed_demo()
        yield True
        transaction.set_rollback(True)


@pytest.fixture
def demo(_demo_for_module, db):
    """The demo catalogue, loaded by the real `seed_demo` command."""
    if not _demo_for_module:
        _seed_demo()


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
