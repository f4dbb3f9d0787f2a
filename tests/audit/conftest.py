"""Fixtures of the audit tests: the demo's staff users, one per role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User


@pytest.fixture
def catalog_user(demo) -> User:
    return User.objects.get(username="catalog")


@pytest.fixture
def sales_user(demo) -> User:
    return User.objects.get(username="sales")


@pytest.fixture
def support_user(demo) -> User:
    return User.objects.get(username="support")


@pytest.fixture
def product_user(demo) -> User:
    return User.objects.get(username="product")
