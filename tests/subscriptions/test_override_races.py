"""Overlapping overrides never land together, whatever path writes them: 16 threads granting
overlapping windows through the service at the same moment (as the admin, an import or a
scheduled change would) leave exactly one, and the others are told it overlaps."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from catalog.models import Feature
from subscriptions import services
from subscriptions.models import Override, Subscription

THREADS = 16


@pytest.mark.django_db(transaction=True)
def test_override_grants__racing_with_overlapping_windows__exactly_one_lands(restore_roles):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    subscription = Subscription.objects.get(external_id="sub-acme")
    feature = Feature.objects.get(key="data-export")
    start = timezone.now() + timedelta(days=3)
    barrier = threading.Barrier(THREADS)

    def grant(n: int) -> str:
        try:
            barrier.wait(timeout=30)
            services.override_grant(
                subscription=subscription,
                feature=feature,
                value=True,
                valid_from=start + timedelta(hours=n),  # each window overlaps every other
                valid_until=start + timedelta(days=2),
                actor=None,
                reason=f"Race {n}",
                source="shell",
            )
            return "granted"
        except ValidationError as error:
            return "overlaps" if "overlaps" in str(error) else f"refused: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(grant, range(THREADS)))

    assert answers.count("granted") == 1, answers
    assert answers.count("overlaps") == THREADS - 1, answers
    assert Override.objects.filter(subscription=subscription, feature=feature).count() == 1
