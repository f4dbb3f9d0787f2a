"""Fixtures of the subscriptions tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import factories as f
from toolkit.change_context import change_context


@pytest.fixture
def shop(db):
    """A business plan and its legacy predecessor, two add-ons, a feature, and customer acme
    subscribed to the plan (`sub-acme`)."""
    with change_context(actor=None, reason="Test data", source="shell"):
        plan = f.ItemFactory(key="business")
        subscription = f.SubscriptionFactory(external_id="sub-acme", plan=plan)
        return SimpleNamespace(
            plan=plan,
            legacy=f.ItemFactory(key="business-2024", legacy=True),
            seats=f.ItemFactory(addon=True, key="extra-seats"),
            storage=f.ItemFactory(addon=True, key="extra-storage"),
            feature=f.FeatureFactory(key="4k-streaming"),
            subscription=subscription,
            customer=subscription.customer,
        )
