"""Recomputing the feature usage snapshot: the counts are exactly what resolving every
customer one by one gives, on the demo and on a few thousand customers read in batches; and
the customers near a metered limit are exactly those whose usage, summed from the rows, is
80 % or more of the limit their answer gives."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Feature, Item
from catalog.selectors import load_catalog_specs
from reporting import services
from reporting.models import FeatureUsage, LimitUsage, UsageSnapshot
from reporting.services import usage_snapshot_refresh
from reporting.tasks import refresh_feature_usage
from segments.models import Segment
from subscriptions import services as subscription_services
from subscriptions.models import Customer
from subscriptions.selectors import resolve_customer
from tests import factories as f
from tests.reporting.conftest import per_feature, resolved_usage, snapshot_usage
from tests.usage.test_selectors import record_usage
from toolkit.change_context import change_context
from usage.models import Consumption
from usage.selectors import current_usage

pytestmark = pytest.mark.django_db

BULK = 1200  # resolving each one as the reference takes ~4 queries a customer
BATCH = 250


def test_refresh__demo__counts_match_resolving_each_customer(demo):
    # Given the demo, and the instant to resolve at
    now = timezone.now()

    # When the snapshot is recomputed
    snapshot = usage_snapshot_refresh(now=now)

    # Then every (feature, answer, source, plans, market) count is what resolve_customer gives
    assert snapshot.status == UsageSnapshot.Status.COMPLETE
    assert snapshot.computed_at == now
    assert snapshot.customers == Customer.objects.count() == 15
    assert snapshot_usage(snapshot) == resolved_usage(now)
    assert snapshot.countries == sorted({str(c.country) for c in Customer.objects.all()})


def test_refresh__demo__the_design_examples_show_in_the_counts(demo):
    now = timezone.now()

    usage = per_feature(snapshot_usage(usage_snapshot_refresh(now=now)))

    # Plans give max-members to acme, globex, initech (trialing), umbrella (in grace) and
    # vandelay (legacy plan); hooli, past its grace, does not keep it.
    assert usage["max-members"] == {"plan": 5, "off": 10}
    # Support's event weekend: streamfan's 4K comes from an override.
    assert usage["4k-streaming"]["override"] == 1
    # The beta list (acme, contoso) is served change-request-version through the segment.
    assert usage["change-request-version"]["segment"] == 2


def test_refresh__runs_again__replaces_the_previous_snapshot(demo):
    first = usage_snapshot_refresh(now=timezone.now() - timedelta(minutes=5))

    second = usage_snapshot_refresh(now=timezone.now())

    assert list(UsageSnapshot.objects.all()) == [second]
    assert not FeatureUsage.objects.filter(snapshot_id=first.pk).exists()


def test_refresh__another_one_running__skipped_and_nothing_written(demo):
    cache.add(services.LOCK_KEY, "1", timeout=60)

    assert usage_snapshot_refresh() is None
    assert not UsageSnapshot.objects.exists()


def test_refresh__resolution_fails__snapshot_marked_failed_and_previous_one_kept(demo, monkeypatch):
    previous = usage_snapshot_refresh(now=timezone.now() - timedelta(minutes=5))

    def broken(**kwargs):
        raise RuntimeError("catalog unreadable")

    monkeypatch.setattr(services, "count_usage", broken)
    with pytest.raises(RuntimeError):
        usage_snapshot_refresh()

    failed = UsageSnapshot.objects.exclude(pk=previous.pk).get()
    assert failed.status == UsageSnapshot.Status.FAILED
    assert "catalog unreadable" in failed.error
    assert UsageSnapshot.objects.get(pk=previous.pk).rows.exists()
    assert cache.get(services.LOCK_KEY) is None  # the next beat may try again


def test_refresh_task__runs_the_service__returns_the_new_snapshot(demo):
    snapshot_id = refresh_feature_usage()

    assert UsageSnapshot.objects.get(pk=snapshot_id).status == UsageSnapshot.Status.COMPLETE


# --- a few thousand customers, in batches --------------------------------------------------------


def insert_customers(now, n: int = BULK) -> None:
    """`n` customers with subscriptions in every lifecycle phase, add-ons, overrides, a second
    plan line and beta list entries, written with INSERT … SELECT (test data only: these rows
    have no history, which no service would allow)."""
    plans = {key: pk for key, pk in Item.objects.values_list("key", "pk")}
    features = {key: pk for key, pk in Feature.objects.values_list("key", "pk")}
    beta = Segment.objects.get(key="beta").pk
    params = {
        "now": now,
        "n": n,
        "plans": [plans[k] for k in ("starter", "business", "enterprise", "basic", "standard", "advanced")],
        "streaming": plans["streaming-premium"],
        "seats": plans["extra-seats"],
        "k4": features["4k-streaming"],
        "export": features["data-export"],
        "beta": beta,
    }
    statements = [
        # Customers in five markets (live-sports is offered in GB and IE only).
        """INSERT INTO subscriptions_customer (external_id, name, country, traits, created_at)
           SELECT 'bulk-' || i, 'Bulk ' || i, (ARRAY['US', 'DE', 'GB', 'FR', 'IE'])[1 + i %% 5], '{}', %(now)s
           FROM generate_series(1, %(n)s) AS i""",
        # One subscription each but every 7th: active, trialing (some trials over), past due
        # (some past their grace), canceled.
        """INSERT INTO subscriptions_subscription (external_id, customer_id, plan_id, status,
               trial_ends_at, current_period_end, past_due_since, created_at)
           SELECT 'bulk-sub-' || c.id, c.id, (%(plans)s::bigint[])[1 + c.id %% 6],
               (ARRAY['active', 'trialing', 'past_due', 'canceled', 'active'])[1 + c.id %% 5],
               CASE WHEN c.id %% 5 = 1 THEN %(now)s + make_interval(days => ((c.id %% 9) - 3)::int) END,
               %(now)s + interval '20 days',
               CASE WHEN c.id %% 5 = 2 THEN %(now)s - make_interval(days => (c.id %% 40)::int) END,
               %(now)s
           FROM subscriptions_customer c WHERE c.external_id LIKE 'bulk-%%' AND c.id %% 7 <> 0""",
        # A second product line for every 9th customer: two plans at once.
        """INSERT INTO subscriptions_subscription (external_id, customer_id, plan_id, status,
               current_period_end, created_at)
           SELECT 'bulk-stream-' || c.id, c.id, %(streaming)s, 'active', %(now)s + interval '20 days', %(now)s
           FROM subscriptions_customer c WHERE c.external_id LIKE 'bulk-%%' AND c.id %% 9 = 0""",
        """INSERT INTO subscriptions_subscriptionaddon (subscription_id, addon_id, quantity)
           SELECT s.id, %(seats)s, 1 + s.id %% 3 FROM subscriptions_subscription s
           WHERE s.external_id LIKE 'bulk-sub-%%' AND s.id %% 4 = 0""",
        # Overrides: 4K granted for a few days on every 11th, data export revoked on every 13th,
        # and a grant that has not started yet on every 17th.
        """INSERT INTO subscriptions_override (subscription_id, feature_id, effect, value,
               valid_from, valid_until, created_at)
           SELECT s.id, %(k4)s, 'grant', 'true',
               %(now)s - interval '1 day', %(now)s + interval '3 days', %(now)s
           FROM subscriptions_subscription s WHERE s.external_id LIKE 'bulk-%%' AND s.id %% 11 = 0""",
        """INSERT INTO subscriptions_override (subscription_id, feature_id, effect, value,
               valid_from, valid_until, created_at)
           SELECT s.id, %(export)s, 'revoke', NULL, NULL, NULL, %(now)s
           FROM subscriptions_subscription s WHERE s.external_id LIKE 'bulk-%%' AND s.id %% 13 = 0""",
        """INSERT INTO subscriptions_override (subscription_id, feature_id, effect, value,
               valid_from, valid_until, created_at)
           SELECT s.id, %(k4)s, 'grant', 'true', %(now)s + interval '2 days', NULL, %(now)s
           FROM subscriptions_subscription s
           WHERE s.external_id LIKE 'bulk-%%' AND s.id %% 17 = 0 AND s.id %% 11 <> 0""",
        # The beta list: every 19th customer included, every 23rd excluded.
        """INSERT INTO segments_segmentmember (segment_id, customer_id, kind)
           SELECT %(beta)s, c.id, CASE WHEN c.id %% 19 = 0 THEN 'included' ELSE 'excluded' END
           FROM subscriptions_customer c
           WHERE c.external_id LIKE 'bulk-%%' AND (c.id %% 19 = 0 OR c.id %% 23 = 0)""",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)


def test_refresh__thousands_of_customers_in_batches__counts_match_resolving_each_customer(demo):
    # Given the demo and BULK more customers in every phase, some with two plans
    now = timezone.now()
    insert_customers(now)
    customers = Customer.objects.count()
    assert customers == BULK + 15

    # When the snapshot is recomputed BATCH customers at a time
    snapshot = usage_snapshot_refresh(now=now, batch_size=BATCH)

    # Then every customer was read once, batch by batch (the last one partial) ...
    assert snapshot.customers == customers
    assert snapshot.batches == math.ceil(customers / BATCH)
    # ... and every count is exactly what resolving each customer on its own gives
    expected = resolved_usage(now)
    assert snapshot_usage(snapshot) == expected
    # The data covered what it was meant to: two plans at once, overrides, the beta list.
    kinds = {(key[0], key[2]) for key in expected}
    assert ("4k-streaming", "override") in kinds
    assert ("change-request-version", "segment") in kinds
    assert ("max-members", "plan") in kinds and ("max-members", "addon") in kinds
    assert any(plans.count(",") > 2 for (_f, _e, _k, _s, plans, _c) in expected)
    assert ("live-sports", "market") in kinds


# --- customers near a metered limit --------------------------------------------------------------


def near_limits_by_page(now) -> dict[tuple[str, str], tuple[int, int]]:
    """(customer, feature) → (used, limit) of every customer whose page marks a metered
    feature near or past its limit (usage.selectors, resolving each customer)."""
    catalog = load_catalog_specs()
    found = {}
    for customer in Customer.objects.order_by("pk"):
        answers = resolve_customer(customer, now=now, catalog=catalog).answers.values()
        for usage in current_usage(customer.pk, answers, catalog.feature_ids):
            if usage.granted and usage.used and usage.level:
                found[customer.external_id, usage.feature_key] = (usage.used, usage.limit)
    return found


def snapshot_limits(snapshot) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (row.customer.external_id, row.feature_key): (row.used, row.limit)
        for row in LimitUsage.objects.filter(snapshot=snapshot).select_related("customer")
    }


def test_refresh__usage_recorded__near_limits_are_what_each_customer_page_marks(demo):
    # Given usage near, at, past and far from limits, and a top-up that moves one away
    record_usage("northwind", "api-calls", 800)  # 80 % of 1,000: near
    record_usage("contoso", "api-calls", 100_000)  # at its limit
    record_usage("umbrella", "ai-tokens", 2_100_000)  # past a soft limit
    record_usage("acme", "ai-tokens", 1_599_999)  # 79.99 %: not near
    record_usage("globex", "ai-tokens", 10**9)  # unlimited
    with change_context(actor=None, reason="Test data", source="shell"):
        revoked = f.SubscriptionFactory(
            plan=Item.objects.get(key="basic"),
            customer=f.CustomerFactory(external_id="revoked-co"),
            current_period_end=timezone.now() + timedelta(days=9),
        )
    record_usage("revoked-co", "api-calls", 950)  # then revoked: no limit to be near
    with change_context(actor=None, reason="Abuse, SEC-3", source="shell"):
        f.OverrideFactory(
            subscription=revoked, feature=Feature.objects.get(key="api-calls"), effect="revoke", value=None
        )
    with change_context(actor=None, reason="Goodwill", source="shell"):
        subscription_services.topup_grant(
            customer=Customer.objects.get(external_id="contoso"),
            feature=Feature.objects.get(key="api-calls"),
            amount=100_000,
            actor=None,
            reason="Goodwill",
            source="shell",
        )
    record_usage("contoso", "api-calls", 70_000)  # 170,000 of 200,000: 85 %
    now = timezone.now()

    # When the snapshot is recomputed
    snapshot = usage_snapshot_refresh(now=now)

    # Then its customers near a limit are those the customer pages mark, with their figures
    expected = near_limits_by_page(now)
    assert (
        snapshot_limits(snapshot)
        == expected
        == {
            ("northwind", "api-calls"): (800, 1000),
            ("contoso", "api-calls"): (170_000, 200_000),
            ("umbrella", "ai-tokens"): (2_100_000, 2_000_000),
        }
    )
    umbrella = LimitUsage.objects.get(snapshot=snapshot, feature_key="ai-tokens")
    assert (umbrella.share, umbrella.hard, umbrella.plans, umbrella.country) == (
        1.05,
        False,
        ",business,",
        "FR",
    )


def test_refresh__runs_again__near_limits_of_the_previous_snapshot_go_with_it(demo):
    record_usage("northwind", "api-calls", 900)
    first = usage_snapshot_refresh(now=timezone.now() - timedelta(minutes=5))

    second = usage_snapshot_refresh(now=timezone.now())

    assert list(LimitUsage.objects.values_list("snapshot_id", flat=True)) == [second.pk]
    assert not LimitUsage.objects.filter(snapshot_id=first.pk).exists()


def test_refresh__thousands_of_customers_in_batches__near_limits_match_each_customers_usage(demo):
    # Given BULK more customers, each metered answer used to some share of its limit (the
    # rows written directly, as the meter writes them), some in the period before as well
    now = timezone.now()
    insert_customers(now)
    catalog = load_catalog_specs()
    rows, expected = [], {}
    for n, customer in enumerate(Customer.objects.order_by("pk")):
        answers = resolve_customer(customer, now=now, catalog=catalog).answers
        for key in ("api-calls", "ai-tokens"):
            answer = answers[key]
            if not answer.granted:
                continue
            limit = None if answer.unlimited else answer.value
            used = (limit or 1_000_000) * (n % 13) // 10  # 0 % to 120 % of the limit
            if not used:
                continue
            common = {"customer_id": customer.pk, "feature_id": catalog.feature_ids[key], "limit": limit}
            first = used // 3
            rows += [
                Consumption(period_start=answer.period_start, quantity=used - first, used_after=0, **common),
                Consumption(
                    period_start=answer.period_start - timedelta(days=31), quantity=7, used_after=7, **common
                ),
            ]
            if first:
                rows.append(
                    Consumption(period_start=answer.period_start, quantity=first, used_after=0, **common)
                )
            if limit is not None and used * 100 >= 80 * limit:
                expected[customer.external_id, key] = (used, limit)
    Consumption.objects.bulk_create(rows)
    assert len(expected) > 100

    # When the snapshot is recomputed BATCH customers at a time
    snapshot = usage_snapshot_refresh(now=now, batch_size=BATCH)

    # Then the customers near a limit are exactly those, with their usage of this period
    assert snapshot.batches == math.ceil(Customer.objects.count() / BATCH)
    assert snapshot_limits(snapshot) == expected


def test_refresh__near_limits__one_query_more_per_batch(demo):
    # Given the demo's 15 customers in batches of 5, one of them near a limit
    record_usage("northwind", "api-calls", 900)

    with CaptureQueriesContext(connection) as queries:
        usage_snapshot_refresh(now=timezone.now(), batch_size=5)

    sums = [q["sql"] for q in queries.captured_queries if 'FROM "usage_consumption"' in q["sql"]]
    assert len(sums) == 3  # one per batch
    assert LimitUsage.objects.count() == 1
