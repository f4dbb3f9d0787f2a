"""The check's hot path, pinned: a warm check runs no SQL and no
Redis round trip while the process's revision listener is healthy (one without it, or when the
snapshot is only in Redis); a cold one a small constant number of queries, whatever the data's
size. An answer that holds a metered feature the customer has reads its count: one round trip
more (vandelay has none, acme has ai-tokens)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from api import keys
from checks import snapshots
from tests.factories import (
    CustomerFactory,
    EntitlementFactory,
    FeatureFactory,
    ItemFactory,
    OverrideFactory,
    SegmentMemberFactory,
    SubscriptionAddonFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db

# A customer's rows: the customer (with whether it has top-ups of metered features),
# subscriptions, add-ons, overrides, segment list entries.
COLD_CUSTOMER_QUERIES = 5
# The catalog specs: features, rules, conditions, segments, entitlements, items; archived features.
COLD_CATALOG_QUERIES = 7


CHECKS = pytest.mark.parametrize(
    "path",
    ["customers/vandelay/entitlements", "customers/vandelay/entitlements/max-members"],
    ids=["all", "one"],
)


@CHECKS
@pytest.mark.parametrize(("listener", "round_trips"), [("live_revisions", 0), ("listener_down", 1)])
def test_warm_check__no_query__no_round_trip_unless_the_listener_is_down(
    demo, reader, path, listener, round_trips, request, django_assert_num_queries, redis_round_trips
):
    request.getfixturevalue(listener)
    assert reader.get(path).status_code == 200

    redis_round_trips.count = 0
    with django_assert_num_queries(0):
        response = reader.get(path)

    assert response.status_code == 200
    assert redis_round_trips.count == round_trips


@CHECKS
def test_warm_in_redis_only__another_process__no_query_and_one_round_trip(
    demo, reader, path, live_revisions, django_assert_num_queries, redis_round_trips
):
    reader.get(path)
    reader.get("customers/globex/entitlements")  # this process has seen the key
    snapshots.forget_all()  # ...but not vandelay's snapshot: it is in Redis only
    keys_known = keys.remembered(reader.key.split(".")[0])

    redis_round_trips.count = 0
    with django_assert_num_queries(0):
        response = reader.get(path)

    assert keys_known is not None
    assert response.status_code == 200
    assert redis_round_trips.count == 1


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "redis"])
def test_redis_tier__every_warm_check_one_round_trip(
    demo, reader, in_memory, live_revisions, settings, django_assert_num_queries, redis_round_trips
):
    settings.API_SNAPSHOTS_IN_MEMORY = in_memory
    reader.get("customers/vandelay/entitlements")

    redis_round_trips.count = 0
    with django_assert_num_queries(0):
        for _ in range(3):
            assert reader.get("customers/vandelay/entitlements").status_code == 200

    assert redis_round_trips.count == (0 if in_memory else 3)


@pytest.mark.parametrize("in_memory", [True, False], ids=["snapshot in memory", "snapshot in redis"])
def test_304__no_query__a_round_trip_only_without_the_snapshot_in_memory(
    demo, reader, in_memory, live_revisions, django_assert_num_queries, redis_round_trips
):
    etag = reader.get("customers/vandelay/entitlements")["ETag"]
    if not in_memory:
        snapshots.forget_all()

    redis_round_trips.count = 0
    with django_assert_num_queries(0):
        response = reader.get("customers/vandelay/entitlements", headers={"HTTP_IF_NONE_MATCH": etag})

    assert response.status_code == 304
    assert redis_round_trips.count == (0 if in_memory else 1)


def test_304__listener_down__no_query_and_one_round_trip(
    demo, reader, listener_down, django_assert_num_queries, redis_round_trips
):
    etag = reader.get("customers/vandelay/entitlements")["ETag"]
    snapshots.forget_all()  # a 304 does not even need the snapshot

    redis_round_trips.count = 0
    with django_assert_num_queries(0):
        response = reader.get("customers/vandelay/entitlements", headers={"HTTP_IF_NONE_MATCH": etag})

    assert response.status_code == 304
    assert redis_round_trips.count == 1


def test_cold_check__catalog_cached__five_queries(demo, reader, django_assert_num_queries):
    reader.get("customers/globex/entitlements")  # the key and the catalog are known now

    with django_assert_num_queries(COLD_CUSTOMER_QUERIES):
        response = reader.get("customers/vandelay/entitlements")

    assert response.status_code == 200


def test_cold_check__nothing_cached__customer_catalog_and_key(demo, reader, django_assert_num_queries):
    with django_assert_num_queries(COLD_CUSTOMER_QUERIES + COLD_CATALOG_QUERIES + 1):
        response = reader.get("customers/vandelay/entitlements")

    assert response.status_code == 200


def test_cold_check__catalog_in_redis__loaded_without_queries(demo, reader, django_assert_num_queries):
    reader.get("customers/globex/entitlements")
    snapshots.forget_all()  # a fresh process: the catalog specs come from Redis

    with django_assert_num_queries(COLD_CUSTOMER_QUERIES):
        reader.get("customers/vandelay/entitlements")


def test_cold_check__query_count_does_not_grow_with_the_data(db, reader, django_assert_num_queries):
    def customer_with(n: int) -> str:
        customer = CustomerFactory()
        for _ in range(n):
            plan = ItemFactory()
            subscription = SubscriptionFactory(customer=customer, plan=plan)
            EntitlementFactory(item=plan, feature=FeatureFactory())
            SubscriptionAddonFactory(subscription=subscription)
            OverrideFactory(subscription=subscription, feature=FeatureFactory())
            SegmentMemberFactory(customer=customer)
        return customer.external_id

    small, large = customer_with(1), customer_with(20)
    reader.get(f"customers/{small}/entitlements")  # key and catalog known

    with django_assert_num_queries(COLD_CUSTOMER_QUERIES):
        response = reader.get(f"customers/{large}/entitlements")

    assert response.status_code == 200
    sources = [a["source"].split(":")[0] for a in response.json()["entitlements"].values() if a["enabled"]]
    assert (sources.count("plan"), sources.count("override")) == (20, 20)


def test_unknown_customer__cached_too__no_query_the_second_time(demo, reader, django_assert_num_queries):
    assert reader.get("customers/ghost/entitlements").status_code == 404

    with django_assert_num_queries(0):
        assert reader.get("customers/ghost/entitlements").status_code == 404


def test_expiring_snapshot__stored_in_redis_no_longer_than_it_holds(demo, reader):
    from django.core.cache import cache

    from toolkit.redis import redis_client

    reader.get("customers/streamfan/entitlements")
    ttl = redis_client().ttl(cache.make_key(snapshots.snapshot_key("streamfan")))
    override_end = timezone.now() + timedelta(days=2)

    assert 0 < ttl <= (override_end - timezone.now()).total_seconds() + 1


def test_without_redis__the_demo_cache__same_answers_and_counts(demo, api, reader):
    """The demo runs on a file cache: no pipeline, the same commands one by one."""
    from django.test import override_settings

    from api.models import CheckCount
    from checks.tasks import flush_check_counts

    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        first = reader.get("customers/acme/entitlements/max-members").json()
        api.patch("subscriptions/sub-acme", {"addons": []})
        second = reader.get("customers/acme/entitlements/max-members").json()
        snapshots.forget_all()
        third = reader.get("customers/acme/entitlements/max-members").json()
        flush_check_counts()

    assert (first["value"], second["value"], third["value"]) == (35, 25, 25)
    assert CheckCount.objects.get(feature_key="max-members").count == 3


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        ("features", 2),  # features, their tags
        ("items", 3),  # items (with successor), entitlements, their features
        ("customers", 1),
        ("subscriptions", 3),  # subscriptions (customer, plan), add-ons, add-on items
        ("segments", 5),  # segments, tags, list entries, their customers, conditions
        ("subscriptions/sub-streamfan/overrides", 2),  # the subscription, its overrides
    ],
)
def test_lists__a_constant_number_of_queries_whatever_the_rows(
    demo, reader, django_assert_num_queries, path, queries
):
    from tests.factories import SegmentFactory, SegmentMemberFactory, TagFactory

    reader.get(path)  # the key is known from now on
    with django_assert_num_queries(queries):
        assert reader.get(path).status_code == 200

    for _ in range(15):
        subscription = SubscriptionFactory(external_id=f"sub-zz-{_}")
        SubscriptionAddonFactory(subscription=subscription)
        OverrideFactory(subscription=subscription, feature=FeatureFactory(tags=[TagFactory()]))
        EntitlementFactory(item=subscription.plan)
        SegmentMemberFactory(segment=SegmentFactory(tags=[TagFactory()]))
    with django_assert_num_queries(queries):
        assert reader.get(path).status_code == 200


# --- metered answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "round_trips"),
    [
        ("customers/acme/entitlements", 1),
        ("customers/acme/entitlements/ai-tokens", 1),
        ("customers/acme/entitlements/max-members", 0),
        ("customers/hooli/entitlements", 0),  # past its grace: it has no metered feature now
    ],
)
def test_warm_check__a_metered_feature_the_customer_has__one_round_trip_for_its_count(
    demo, reader, live_revisions, path, round_trips, django_assert_num_queries, redis_round_trips
):
    assert reader.get(path).status_code == 200  # the count read (and made) once

    redis_round_trips.count = 0
    with django_assert_num_queries(0):
        response = reader.get(path)

    assert response.status_code == 200
    assert redis_round_trips.count == round_trips


def test_first_check_of_a_period__its_count_made_from_the_database_once(
    demo, reader, live_revisions, django_assert_max_num_queries
):
    reader.get("customers/vandelay/entitlements")  # the key and the catalog known

    # Redis has no count for acme's ai-tokens in this period yet: made under the advisory
    # lock from the period's rows (lock, sum, idempotency keys; in a test's transaction, a
    # savepoint and its release too), with the cold build's queries.
    with django_assert_max_num_queries(COLD_CUSTOMER_QUERIES + 5):
        assert reader.get("customers/acme/entitlements/ai-tokens").json()["used"] == 0
    with django_assert_max_num_queries(0):
        assert reader.get("customers/acme/entitlements/ai-tokens").json()["used"] == 0
