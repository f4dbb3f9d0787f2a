"""The benchmark's data generator (`bench.seed`): the same seed gives the same data,
growing a data set gives what seeding the larger one at once would, and the data has the shape
BENCHMARKS.md describes — valid for the models, audited, and resolvable, with the metered
features held by the metered customers only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import transaction

from audit.models import AuditEntry, ScheduledChange
from audit.scheduling import check_request_shape
from bench.seed import (
    HARD_METERED,
    METERED_ADDON,
    METERED_LIMITS,
    RACE_CUSTOMER,
    RACE_LIMIT,
    Catalog,
    SeedError,
    customer_def,
    populate,
)
from bench.stack import BASE_DIR
from catalog.models import Entitlement, Feature, FeatureGroupPermission, Item
from catalog.values import clean_value
from segments import matching
from segments.models import Condition, Segment, SegmentMember, TargetingRule
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon
from subscriptions.selectors import resolve_customer

EPOCH = "2030-01-15"
N = 200
METERED = 20  # metered customers (1000 in the benchmark)
FEATURE_FIELDS = [
    "key", "kind", "levels", "min_value", "max_value", "allow_unlimited", "period", "period_anchor",
    "limit_type", "markets", "keep_when_delinquent", "fallback", "status", "description",
]  # fmt: skip
SUBSCRIPTION_FIELDS = [
    "external_id", "customer__external_id", "plan__key", "status", "trial_ends_at",
    "current_period_end", "past_due_since",
]  # fmt: skip


def seed(customers: int, *, seed: int = 1, scheduled: int = 100) -> None:
    populate(customers=customers, seed=seed, epoch=EPOCH, scheduled=scheduled, metered=METERED, verbosity=0)


def _j(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def dump() -> dict[str, list]:
    """Everything the generator wrote, by natural keys (primary keys differ between runs)."""
    return {
        "features": list(Feature.objects.order_by("key").values_list(*FEATURE_FIELDS)),
        "feature tags": sorted(Feature.tags.through.objects.values_list("feature__key", "tag__key")),
        "items": list(
            Item.objects.order_by("key").values_list("key", "kind", "status", "rank", "grace_days")
        ),
        "entitlements": sorted(
            (item, feature, _j(value))
            for item, feature, value in Entitlement.objects.values_list("item__key", "feature__key", "value")
        ),
        "conditions": sorted(
            (s, rule, attribute, op, _j(value))
            for s, rule, attribute, op, value in Condition.objects.values_list(
                "segment__key", "rule", "attribute", "op", "value"
            )
        ),
        "targeting": sorted(
            (f, position, s, _j(value))
            for f, position, s, value in TargetingRule.objects.values_list(
                "feature__key", "position", "segment__key", "value"
            )
        ),
        "customers": sorted(
            (ext, name, str(country), _j(traits))
            for ext, name, country, traits in Customer.objects.values_list(
                "external_id", "name", "country", "traits"
            )
        ),
        "subscriptions": sorted(Subscription.objects.values_list(*SUBSCRIPTION_FIELDS)),
        "addons": sorted(
            SubscriptionAddon.objects.values_list("subscription__external_id", "addon__key", "quantity")
        ),
        "overrides": sorted(
            (sub, feature, effect, _j(value), _j(start), _j(end))
            for sub, feature, effect, value, start, end in Override.objects.values_list(
                "subscription__external_id", "feature__key", "effect", "value", "valid_from", "valid_until"
            )
        ),
        "lists": sorted(SegmentMember.objects.values_list("segment__key", "customer__external_id", "kind")),
        "scheduled": sorted(
            (method, path, _j(body), effective_at, reason)
            for method, path, body, effective_at, reason in ScheduledChange.objects.values_list(
                "method", "path", "body", "effective_at", "reason"
            )
        ),
    }


def seeded(customers: int, **kwargs) -> dict[str, list]:
    """Seed inside a transaction that is rolled back, and return what it wrote."""
    with transaction.atomic():
        seed(customers, **kwargs)
        data = dump()
        transaction.set_rollback(True)
    return data


@pytest.fixture(scope="module")
def bench_data(django_db_setup, django_db_blocker):
    """N customers with the default 10,000 scheduled changes, seeded once for the module and
    rolled back at its end."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            seed(N, scheduled=10_000)
            yield
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# --- determinism -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed__same_seed_twice__same_data():
    first = seeded(N)
    second = seeded(N)

    assert first == second
    assert len(first["customers"]) == N + METERED + 1  # and the race's customer


def test_seed__other_seed__other_data():
    epoch = datetime(2030, 1, 15, tzinfo=UTC)
    one, two = Catalog(1), Catalog(2)

    assert one.items != two.items
    assert [customer_def(1, i, one, epoch) for i in range(50)] != [
        customer_def(2, i, two, epoch) for i in range(50)
    ]


@pytest.mark.django_db
def test_seed__grown_from_fewer__same_customers_as_seeded_at_once():
    at_once = seeded(N)
    with transaction.atomic():
        seed(150)
        seed(N)
        grown = dump()
        transaction.set_rollback(True)

    # Scheduled changes target the customers present at the first run: compare all the rest.
    for part in at_once:
        if part != "scheduled":
            assert grown[part] == at_once[part], part


@pytest.mark.django_db
def test_seed__grow_with_another_seed__refused():
    seed(20, seed=1)

    with pytest.raises(SeedError, match="seed 1"):
        seed(30, seed=2)


# --- shape -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed__catalog__200_features_of_every_kind_and_2_metered(bench_data):
    features = Feature.objects.exclude(kind="metered")

    assert features.count() == 200
    assert Counter(f.kind for f in features) == {"switch": 100, "quantity": 40, "range": 30, "custom": 30}
    metered = {
        f.key: (f.period, f.period_anchor, f.limit_type) for f in Feature.objects.filter(kind="metered")
    }
    assert metered == {
        "bench-api-calls": ("month", "calendar", "hard"),
        "bench-tokens": ("month", "calendar", "soft"),
    }
    assert features.filter(status="archived").count() == 4
    assert any(f.markets for f in features)
    tagged = features.filter(tags__isnull=False).distinct()
    assert tagged.exists()
    # Tags hand out guardian rows, through the service.
    assert FeatureGroupPermission.objects.filter(content_object__in=tagged, via_tags=True).exists()


@pytest.mark.django_db
def test_seed__items__20_plans_of_50_to_150_features_and_30_addons(bench_data):
    plans = Item.objects.filter(kind="plan")

    assert plans.count() == 20
    assert Item.objects.filter(kind="addon").count() == 31  # 30, and the metered one
    for plan in plans:
        assert 50 <= plan.entitlements.count() <= 150, plan.key
    assert plans.filter(status="legacy").count() == 2
    # Only the metered add-on gives the metered features.
    metered = Entitlement.objects.filter(feature__kind="metered")
    assert {(e.item.key, e.feature.key, e.value) for e in metered} == {
        (METERED_ADDON, key, limit) for key, limit in METERED_LIMITS.items()
    }


@pytest.mark.django_db
def test_seed__every_value__fits_its_feature(bench_data):
    for model in (Entitlement, TargetingRule):
        for row in model.objects.select_related("feature"):
            assert clean_value(row.feature, row.value) == row.value
    for override in Override.objects.filter(effect="grant").select_related("feature"):
        assert clean_value(override.feature, override.value) == override.value


@pytest.mark.django_db
def test_seed__segments__rules_over_3_to_5_attributes_and_lists(bench_data):
    assert Segment.objects.count() == 20
    for segment in Segment.objects.prefetch_related("conditions"):
        conditions = list(segment.conditions.all())
        assert 3 <= len({c.attribute for c in conditions}) <= 5, segment.key
        for condition in conditions:
            matching.validate_condition(condition.attribute, condition.op, condition.value)
        # Lists are drawn from the first 5000 customers, each in a list with chance 0.2.
        assert 0.1 * N <= segment.members.count() <= 0.3 * N, segment.key
    assert TargetingRule.objects.values("feature").distinct().count() == 40


@pytest.mark.django_db
def test_seed__customers__subscriptions_in_every_state_with_addons(bench_data):
    assert Customer.objects.filter(external_id__startswith="cust-").count() == N
    subscriptions = Subscription.objects.all()
    assert set(subscriptions.values_list("status", flat=True)) == {
        "active", "trialing", "past_due", "paused", "canceled", "expired",
    }  # fmt: skip
    assert not subscriptions.filter(status="trialing", trial_ends_at__isnull=True).exists()
    assert not subscriptions.filter(status="past_due", past_due_since__isnull=True).exists()
    popular = subscriptions.filter(plan__key="plan-00").count() / subscriptions.count()
    assert 0.45 <= popular <= 0.65
    assert SubscriptionAddon.objects.exists()


@pytest.mark.django_db
def test_seed__overrides__about_30_percent_of_customers_and_skewed(bench_data):
    per_customer = Counter(Override.objects.values_list("subscription__customer__external_id", flat=True))

    assert 0.2 * N <= len(per_customer) <= 0.4 * N
    assert per_customer["cust-000007"] >= 100  # one customer in 5000 has 100+
    # Never two overrides of one feature on one subscription: their windows cannot overlap.
    pairs = Counter(Override.objects.values_list("subscription_id", "feature_id"))
    assert max(pairs.values()) == 1


@pytest.mark.django_db
def test_seed__scheduled_changes__10k_pending_api_writes(bench_data):
    changes = ScheduledChange.objects.all()

    assert changes.count() == 10_000
    assert set(changes.values_list("status", flat=True)) == {"pending"}
    assert changes.filter(effective_at__lte=datetime(2030, 1, 15, tzinfo=UTC)).count() == 0
    for change in changes.order_by("id")[:50]:
        check_request_shape(change.method, change.path, change.body)


@pytest.mark.django_db
def test_seed__every_row__has_its_history_and_audit_entry(bench_data):
    total = 0
    for model in (Customer, Subscription, SubscriptionAddon, Override, SegmentMember, Entitlement, Condition):
        rows = model.objects.count()
        assert model.history.filter(history_type="+").count() == rows, model.__name__
        total += rows

    assert AuditEntry.objects.filter(reason__startswith="Benchmark data set").count() >= total


@pytest.mark.django_db
def test_seed__customers__resolve_without_error(bench_data):
    for external_id in ("cust-000000", "cust-000007", "cust-000199"):
        resolution = resolve_customer(Customer.objects.get(external_id=external_id))
        assert len(resolution.answers) == 198  # every active feature answers, the 2 metered ones too


def metered_answers(external_id: str) -> dict[str, tuple]:
    """(granted, limit, hard) of each metered feature the customer is answered."""
    answers = resolve_customer(Customer.objects.get(external_id=external_id)).answers
    return {key: (a.granted, a.value, a.hard) for key, a in answers.items() if a.kind == "metered"}


@pytest.mark.django_db
def test_seed__metered_features__held_by_the_metered_customers_and_no_other(bench_data):
    metered = Customer.objects.filter(external_id__startswith="meter-0")
    assert metered.count() == METERED

    for customer in metered.order_by("external_id")[:5]:
        assert metered_answers(customer.external_id) == {
            "bench-api-calls": (True, METERED_LIMITS["bench-api-calls"], True),
            "bench-tokens": (True, METERED_LIMITS["bench-tokens"], False),
        }
    assert metered_answers(RACE_CUSTOMER)[HARD_METERED] == (True, RACE_LIMIT, True)
    # The customers the checks are measured on hold none: their checks never read a count.
    held = SubscriptionAddon.objects.filter(addon__key=METERED_ADDON)
    assert not held.filter(subscription__customer__external_id__startswith="cust-").exists()
    assert (
        not Override.objects.filter(feature__kind="metered")
        .exclude(subscription__customer__external_id=RACE_CUSTOMER)
        .exists()
    )
    for external_id in ("cust-000000", "cust-000007", "cust-000199"):
        assert {granted for granted, _, _ in metered_answers(external_id).values()} == {False}


def test_seed__cust_customers__drawn_from_the_catalog_without_the_metered_corner():
    epoch = datetime(2030, 1, 15, tzinfo=UTC)
    catalog = Catalog(1)

    assert len(catalog.features) == 200
    assert METERED_ADDON not in catalog.addons
    for index in range(300):
        customer = customer_def(1, index, catalog, epoch)
        assert not any(key == METERED_ADDON for s in customer.subscriptions for key, _ in s.addons)
        assert not any(o.feature.startswith("bench-") for o in customer.overrides)


@pytest.mark.django_db
def test_seed__no_customers__refused():
    with pytest.raises(SeedError, match="at least 1"):
        seed(0)


# --- the command line ------------------------------------------------------------------------------


def run_python(*args: str, settings: str | None = "config.settings.test") -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=BASE_DIR, timeout=120
    )


def test_seed__command_line__no_customers__refused_with_the_reason():
    done = run_python("-m", "bench.seed", "--customers", "0")

    assert done.returncode == 1
    assert done.stderr.strip() == "error: --customers must be at least 1."
    assert done.stdout == ""


def test_seed__command_line__help__names_every_option():
    done = run_python("-m", "bench.seed", "--help")

    assert done.returncode == 0
    for option in ("--customers", "--seed", "--scheduled", "--metered", "--epoch", "--verbosity"):
        assert option in done.stdout


def test_bench__imported__sets_nothing_up():
    code = (
        "import bench, bench.run, bench.seed, django.apps, django.conf; "
        "print(django.conf.settings.configured, django.apps.apps.ready)"
    )
    done = run_python("-c", code, settings=None)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
