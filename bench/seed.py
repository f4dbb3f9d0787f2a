"""`python -m bench.seed --customers N --seed S`: the benchmark's data (BENCHMARKS.md).

Deterministic: the catalog is a function of the seed alone, and everything about customer `i`
(its row, subscriptions, add-ons, overrides, list entries) a function of the seed and `i`
alone, so the same seed gives the same data, and growing a database seeded with fewer
customers (`--customers 10000` after `--customers 1000`) adds exactly the customers a fresh
seed of 10000 would have. Dates are relative to `--epoch` (default: today, 00:00 UTC), kept
from the first run. The rows carry the data set's name, `seed_bench`, with the seed and epoch
(in the features' descriptions and the reasons of their history), by which a later run
recognises them.

Shape: 200 features of every kind (a few archived, a few sold only in some markets, some
tagged), 20 plans of 50–150 features each (one of them popular: about 55% of subscriptions),
30 add-ons, 20 segments whose rules test 3–5 attributes and whose lists hold about 1000
customers each (drawn from the first 5000), customers with 0–2 subscriptions in every
lifecycle state and add-ons on some, overrides on 30% of customers (Pareto-distributed, and
one customer in 5000 with 100+), and 10,000 pending scheduled changes (API writes on the
first 1000 customers, due from one day after the epoch).

Metered usage has its own corner, apart from all of the above so that the checks measured on
the `cust-` customers measure what they did before it existed: two metered features
(`bench-api-calls`, hard, and `bench-tokens`, soft, both monthly on the calendar, with limits no
run comes near), given only by the add-on `addon-metered`, which only the 1000 customers
`meter-000000`… hold (each on one active subscription to a plan drawn as for the others, no
overrides, no lists), and `meter-race`, whose override gives `bench-api-calls` a limit of 1000
for the hard-limit race (bench.measure.hard_limit_race). The `cust-` customers never hold a
metered feature, so their checks never read a count; they do answer the two features (off),
as every customer answers every active feature. The metered customers are written with the
catalog's first run, whatever N: growing the data set leaves them as they are.

Every row goes in with its history row and audit entry (`audit.bulk.bulk_create_audited`),
in one change context; tags and their guardian rows go through the catalog services. The
rows bypass the services, so the catalog revision is moved at the end: no cached answer
survives a seed.

Runs with the settings `DJANGO_SETTINGS_MODULE` names (`config.settings.local` by default, as
`manage.py`); `bench.run` calls `populate()` in its process. Importing this module touches no
model: the writer imports the domain when it runs, after `django.setup()`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import django
from django.db import transaction

from segments import matching
from toolkit import revisions
from toolkit.change_context import change_context, request_scope

FEATURES = 200
ARCHIVED_FEATURES = 4
PLANS = 20
LEGACY_PLANS = 2  # the last two: grandfathered
ADDONS = 30
SEGMENTS = 20
RULED_FEATURES = 40  # features with targeting rules
SCHEDULED = 10_000
SCHEDULED_TARGETS = 1000  # scheduled changes touch the first 1000 customers
LIST_POOL = 5000  # segment lists are drawn from the first 5000 customers...
LIST_SHARE = 0.2  # ...each in each list with this chance: ~1000 per list
OVERRIDE_SHARE = 0.30
HEAVY_EVERY = 5000  # customer 7, 5007, 10007, ... has 100+ overrides
POPULAR_PLAN_SHARE = 0.55
CHUNK = 5000  # customers per transaction
METERED_CUSTOMERS = 1000  # meter-000000…: the working set of the consume and metered-check loads
METERED_ADDON = "addon-metered"
RACE_CUSTOMER = "meter-race"
RACE_LIMIT = 1000  # meter-race's limit of the hard metered feature (an override)

BENCH_USER = "bench"
READER_USER = "bench-reader"
MARKER = re.compile(r"seed_bench seed=(?P<seed>-?\d+) epoch=(?P<epoch>\d{4}-\d{2}-\d{2})")

COUNTRIES = [
    ("US", 30), ("GB", 10), ("DE", 10), ("FR", 8), ("NL", 4), ("ES", 4), ("IT", 4), ("SE", 3),
    ("IE", 2), ("PL", 3), ("CA", 5), ("AU", 3), ("JP", 4), ("BR", 3), ("IN", 4), ("MX", 2),
    ("CH", 2), ("AT", 2), ("DK", 1), ("NO", 1),
]  # fmt: skip
COUNTRY_CODES = [code for code, _ in COUNTRIES]
COUNTRY_WEIGHTS = [weight for _, weight in COUNTRIES]
INDUSTRIES = ["media", "retail", "finance", "health", "education", "gaming", "logistics", "travel"]
REGIONS = ["emea", "amer", "apac"]
ADJECTIVES = ["Blue", "Swift", "Bright", "Silent", "Golden", "Nimble", "Solid", "Clever", "Lucky", "Prime"]
NOUNS = ["Harbor", "Falcon", "Orchard", "Summit", "Anchor", "Beacon", "Canyon", "Meadow", "Forge", "River"]
SUFFIXES = ["Ltd", "Inc", "GmbH", "SA", "BV", "AB", "Co", "Group", "Labs", "Studio"]
QUANTITY_LEVELS = [1, 2, 5, 10, 20, 25, 50, 100, 250, 500, 1000]
CUSTOM_LADDERS = [
    ["email", "email+chat", "email+chat+sla"],
    ["bronze", "silver", "gold", "platinum"],
    ["v1", "v2"],
    ["basic", "advanced", "expert"],
]
RANGES = [(0, 100), (100, 1000), (1, 10_000), (10, 500)]
STATUSES = [
    ("active", 75), ("trialing", 8), ("past_due", 7), ("paused", 3), ("canceled", 5), ("expired", 2),
]  # fmt: skip
STATUS_CODES = [status for status, _ in STATUSES]
STATUS_WEIGHTS = [weight for _, weight in STATUSES]


def rng(seed: int, *parts: object) -> random.Random:
    """A generator for one named part of the data: seeding with a string hashes it with
    SHA-512, so the stream is the same in every process and Python run."""
    return random.Random("/".join(str(p) for p in (seed, *parts)))


# --- the catalog: a function of the seed ----------------------------------------------------------


@dataclass(frozen=True)
class FeatureDef:
    key: str
    kind: str
    fields: dict[str, Any]
    archived: bool
    tag: str | None


def feature_defs(seed: int) -> list[FeatureDef]:
    r = rng(seed, "features")
    kinds = ["switch"] * 100 + ["quantity"] * 40 + ["range"] * 30 + ["custom"] * 30
    r.shuffle(kinds)
    archived = set(r.sample(range(FEATURES), ARCHIVED_FEATURES))
    defs = []
    for i, kind in enumerate(kinds):
        fields: dict[str, Any] = {}
        if kind == "quantity":
            fields["levels"] = sorted(r.sample(QUANTITY_LEVELS, r.randint(3, 6)))
            fields["allow_unlimited"] = r.random() < 0.3
        elif kind == "range":
            fields["min_value"], fields["max_value"] = r.choice(RANGES)
        elif kind == "custom":
            fields["levels"] = list(r.choice(CUSTOM_LADDERS))
        if r.random() < 0.1:
            fields["markets"] = sorted(r.sample(COUNTRY_CODES, r.randint(2, 6)))
        fields["keep_when_delinquent"] = r.random() < 0.2
        fields["fallback"] = r.choices(["deny", "allow", "last_known"], [70, 20, 10])[0]
        tag = r.choice(["sales", "support", "product"]) if r.random() < 0.15 else None
        defs.append(FeatureDef(f"{kind}-{i:03d}", kind, fields, i in archived, tag))
    return defs


# Limits far above what a benchmark run consumes (some tens of thousands of units in all).
METERED_FEATURES = [
    FeatureDef(
        "bench-api-calls",
        "metered",
        {"period": "month", "period_anchor": "calendar", "limit_type": "hard", "fallback": "allow"},
        False,
        None,
    ),
    FeatureDef(
        "bench-tokens",
        "metered",
        {
            "period": "month",
            "period_anchor": "calendar",
            "limit_type": "soft",
            "allow_unlimited": True,
            "fallback": "last_known",
        },
        False,
        None,
    ),
]
METERED_LIMITS = {"bench-api-calls": 2_000_000_000, "bench-tokens": 2_000_000_000}
HARD_METERED = "bench-api-calls"


def value_for(r: random.Random, feature: FeatureDef) -> Any:
    """A value that fits the feature (catalog.values.clean_value)."""
    if feature.kind == "switch":
        return True
    if feature.kind == "quantity":
        if feature.fields["allow_unlimited"] and r.random() < 0.1:
            return "unlimited"
        return r.choice(feature.fields["levels"])
    if feature.kind == "range":
        return r.randint(feature.fields["min_value"], feature.fields["max_value"])
    return r.choice(feature.fields["levels"])


@dataclass(frozen=True)
class ItemDef:
    key: str
    kind: str
    rank: int
    grace_days: int
    status: str
    grants: dict[str, Any]  # feature key → value


def item_defs(seed: int, features: list[FeatureDef]) -> list[ItemDef]:
    active = [f for f in features if not f.archived]
    items = []
    for i in range(PLANS):
        r = rng(seed, "plan", i)
        chosen = r.sample(active, r.randint(50, 150))
        status = "legacy" if i >= PLANS - LEGACY_PLANS else "active"
        items.append(
            ItemDef(
                key=f"plan-{i:02d}",
                kind="plan",
                rank=(i + 1) * 10,
                grace_days=r.choice([0, 3, 7, 14, 30]),
                status=status,
                grants={f.key: value_for(r, f) for f in sorted(chosen, key=lambda f: f.key)},
            )
        )
    sellable = [f for f in active if f.kind in ("quantity", "range", "switch")]
    for i in range(ADDONS):
        r = rng(seed, "addon", i)
        chosen = r.sample(sellable, r.randint(1, 6))
        items.append(
            ItemDef(
                key=f"addon-{i:02d}",
                kind="addon",
                rank=0,
                grace_days=0,
                status="active",
                grants={f.key: value_for(r, f) for f in sorted(chosen, key=lambda f: f.key)},
            )
        )
    return items


TRAIT_ATTRIBUTES = ["traits.industry", "traits.employees", "traits.region", "traits.beta"]
SEGMENT_ATTRIBUTES = [matching.COUNTRY, matching.PLAN, matching.PLAN_RANK, matching.STATUS, *TRAIT_ATTRIBUTES]


def condition_for(r: random.Random, attribute: str) -> dict[str, Any]:
    if attribute == matching.COUNTRY:
        op = r.choice(["in", "in", "not_in", "eq"])
        value: Any = (
            sorted(r.sample(COUNTRY_CODES, r.randint(3, 8))) if op != "eq" else r.choice(COUNTRY_CODES)
        )
    elif attribute == matching.PLAN:
        op, value = "in", sorted(f"plan-{i:02d}" for i in r.sample(range(PLANS), r.randint(2, 6)))
    elif attribute == matching.PLAN_RANK:
        op, value = r.choice(["gte", "lte"]), r.choice(range(10, PLANS * 10 + 1, 10))
    elif attribute == matching.STATUS:
        op = r.choice(["eq", "in"])
        value = "active" if op == "eq" else sorted(r.sample(["active", "trialing", "past_due"], 2))
    elif attribute == "traits.industry":
        op = r.choice(["eq", "in", "neq"])
        value = sorted(r.sample(INDUSTRIES, 3)) if op == "in" else r.choice(INDUSTRIES)
    elif attribute == "traits.employees":
        op, value = r.choice(["gte", "lte"]), r.choice([10, 50, 200, 1000])
    elif attribute == "traits.region":
        op, value = "eq", r.choice(REGIONS)
    else:
        op, value = "eq", True
    matching.validate_condition(attribute, op, value)
    return {"attribute": attribute, "op": op, "value": value}


def segment_rules(seed: int, index: int) -> list[list[dict[str, Any]]]:
    """1–3 rules whose conditions together test 3–5 distinct attributes."""
    r = rng(seed, "segment", index)
    attributes = r.sample(SEGMENT_ATTRIBUTES, r.randint(3, 5))
    rule_count = r.randint(1, min(3, len(attributes)))
    rules: list[list[dict[str, Any]]] = [[] for _ in range(rule_count)]
    for position, attribute in enumerate(attributes):
        # Each rule gets at least one attribute; the rest are spread at random.
        target = position if position < rule_count else r.randrange(rule_count)
        rules[target].append(condition_for(r, attribute))
    return rules


def targeting_defs(seed: int, features: list[FeatureDef]) -> list[tuple[FeatureDef, list[tuple[int, Any]]]]:
    """(feature, [(segment index, value), ...]) for the features with targeting rules."""
    r = rng(seed, "targeting")
    active = [f for f in features if not f.archived]
    chosen = sorted(r.sample(active, RULED_FEATURES), key=lambda f: f.key)
    return [(f, [(s, value_for(r, f)) for s in r.sample(range(SEGMENTS), r.randint(1, 3))]) for f in chosen]


# --- one customer: a function of the seed and its index -------------------------------------------


@dataclass
class SubscriptionDef:
    external_id: str
    plan: str
    status: str
    trial_ends_at: datetime | None
    current_period_end: datetime
    past_due_since: datetime | None
    addons: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class OverrideDef:
    subscription: int  # index into the customer's subscriptions
    feature: str
    effect: str
    value: Any
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass
class CustomerDef:
    index: int
    external_id: str
    name: str
    country: str
    traits: dict[str, Any]
    subscriptions: list[SubscriptionDef]
    overrides: list[OverrideDef]
    lists: list[tuple[int, str]]  # (segment index, "included" | "excluded")


def external_id(index: int) -> str:
    return f"cust-{index:06d}"


def metered_item_def() -> ItemDef:
    """The one item that gives the metered features: an add-on held by the metered customers only."""
    return ItemDef(
        key=METERED_ADDON, kind="addon", rank=0, grace_days=0, status="active", grants=dict(METERED_LIMITS)
    )


class Catalog:
    """The catalog definitions, computed once per seed. `features`, `items` and `addons` are the
    catalog the `cust-` customers draw from; the metered corner is apart (module docstring)."""

    def __init__(self, seed: int) -> None:
        self.features = feature_defs(seed)
        self.by_key = {f.key: f for f in self.features}
        self.items = item_defs(seed, self.features)
        self.plans = [i for i in self.items if i.kind == "plan"]
        self.active_plans = [p.key for p in self.plans if p.status == "active"]
        self.addons = [i.key for i in self.items if i.kind == "addon"]
        self.active_features = [f for f in self.features if not f.archived]


def customer_def(seed: int, index: int, catalog: Catalog, epoch: datetime) -> CustomerDef:
    r = rng(seed, "customer", index)
    ext = external_id(index)
    country = r.choices(COUNTRY_CODES, COUNTRY_WEIGHTS)[0]
    traits: dict[str, Any] = {}
    if r.random() < 0.95:
        traits = {
            "industry": r.choice(INDUSTRIES),
            "employees": int(r.lognormvariate(3.5, 1.5)) + 1,
            "region": r.choice(REGIONS),
            "beta": r.random() < 0.05,
        }
    heavy = index % HEAVY_EVERY == 7
    with_overrides = heavy or r.random() < OVERRIDE_SHARE
    roll = r.random()
    count = 2 if roll < 0.10 else (0 if roll < 0.14 and not with_overrides else 1)
    subscriptions = []
    for k in range(count):
        popular = r.random() < POPULAR_PLAN_SHARE
        plan = catalog.plans[0].key if popular else r.choice(catalog.plans[1:]).key
        status = r.choices(STATUS_CODES, STATUS_WEIGHTS)[0]
        trial_ends_at = past_due_since = None
        if status == "trialing":
            # A few trials ended already (not yet swept to expired).
            trial_ends_at = epoch + timedelta(days=r.randint(-5, 30), hours=r.randint(0, 23))
        elif status == "past_due":
            past_due_since = epoch - timedelta(days=r.randint(1, 40))
        sub = SubscriptionDef(
            external_id=f"sub-{index:06d}-{k}",
            plan=plan,
            status=status,
            trial_ends_at=trial_ends_at,
            current_period_end=epoch + timedelta(days=r.randint(1, 30)),
            past_due_since=past_due_since,
        )
        if r.random() < 0.3:
            sub.addons = [
                (key, min(int(r.paretovariate(2.0)), 10)) for key in r.sample(catalog.addons, r.randint(1, 3))
            ]
        subscriptions.append(sub)
    overrides = []
    if with_overrides and subscriptions:
        n = r.randint(100, 180) if heavy else min(int(r.paretovariate(1.6)), 60)
        for feature in r.sample(catalog.features, n):  # distinct features: windows never overlap
            effect = "revoke" if r.random() < 0.15 else "grant"
            window = r.random()
            valid_from = valid_until = None
            if window < 0.25:  # ends in the coming weeks
                valid_until = epoch + timedelta(days=r.randint(1, 60), hours=r.randint(0, 23))
            elif window < 0.35:  # ended
                valid_from = epoch - timedelta(days=90)
                valid_until = epoch - timedelta(days=r.randint(1, 30))
            elif window < 0.45:  # not begun yet
                valid_from = epoch + timedelta(days=r.randint(1, 30))
                valid_until = valid_from + timedelta(days=7) if r.random() < 0.5 else None
            overrides.append(
                OverrideDef(
                    subscription=r.randrange(len(subscriptions)),
                    feature=feature.key,
                    effect=effect,
                    value=value_for(r, feature) if effect == "grant" else None,
                    valid_from=valid_from,
                    valid_until=valid_until,
                )
            )
    lists = []
    if index < LIST_POOL:
        for segment in range(SEGMENTS):
            if r.random() < LIST_SHARE:
                lists.append((segment, "excluded" if r.random() < 0.15 else "included"))
    name = f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)} {r.choice(SUFFIXES)} {index}"
    return CustomerDef(index, ext, name, country, traits, subscriptions, overrides, lists)


def metered_external_id(index: int) -> str:
    return f"meter-{index:06d}"


def metered_customer_def(seed: int, index: int, catalog: Catalog, epoch: datetime) -> CustomerDef:
    """Metered customer `index`: an ordinary customer's row and plan, one active subscription that
    holds `addon-metered` (and sometimes other add-ons), no overrides, no list entries."""
    r = rng(seed, "metered customer", index)
    country = r.choices(COUNTRY_CODES, COUNTRY_WEIGHTS)[0]
    traits = {
        "industry": r.choice(INDUSTRIES),
        "employees": int(r.lognormvariate(3.5, 1.5)) + 1,
        "region": r.choice(REGIONS),
        "beta": r.random() < 0.05,
    }
    popular = r.random() < POPULAR_PLAN_SHARE
    plan = catalog.plans[0].key if popular else r.choice(catalog.active_plans[1:])
    addons = [(METERED_ADDON, 1)]
    if r.random() < 0.3:
        addons += [
            (key, min(int(r.paretovariate(2.0)), 10)) for key in r.sample(catalog.addons, r.randint(1, 2))
        ]
    subscription = SubscriptionDef(
        external_id=f"sub-meter-{index:06d}",
        plan=plan,
        status="active",
        trial_ends_at=None,
        current_period_end=epoch + timedelta(days=r.randint(1, 30)),
        past_due_since=None,
        addons=addons,
    )
    name = f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)} {r.choice(SUFFIXES)} metered {index}"
    return CustomerDef(index, metered_external_id(index), name, country, traits, [subscription], [], [])


def race_customer_def(catalog: Catalog, epoch: datetime) -> CustomerDef:
    """`meter-race`: on the popular plan with `addon-metered`, and an override that lowers its
    hard limit to RACE_LIMIT, so that a race can take its last units (bench.measure)."""
    subscription = SubscriptionDef(
        external_id="sub-meter-race",
        plan=catalog.plans[0].key,
        status="active",
        trial_ends_at=None,
        current_period_end=epoch + timedelta(days=30),
        past_due_since=None,
        addons=[(METERED_ADDON, 1)],
    )
    override = OverrideDef(
        subscription=0,
        feature=HARD_METERED,
        effect="grant",
        value=RACE_LIMIT,
        valid_from=None,
        valid_until=None,
    )
    return CustomerDef(-1, RACE_CUSTOMER, "Race Metered Ltd", "US", {}, [subscription], [override], [])


def scheduled_def(
    seed: int, j: int, customers: int, catalog: Catalog, epoch: datetime, known: dict[int, CustomerDef]
) -> tuple[str, str, Any]:
    """(method, path, body) of scheduled change `j`: a trait change, a plan change or a
    one-hour grant, on one of the first 1000 customers (`known` caches their definitions)."""
    r = rng(seed, "scheduled", j)
    index = r.randrange(min(customers, SCHEDULED_TARGETS))
    if index not in known:
        known[index] = customer_def(seed, index, catalog, epoch)
    target = known[index]
    kind = r.random()
    if target.subscriptions and kind < 0.30:
        sub = r.choice(target.subscriptions)
        plan = r.choice([p for p in catalog.active_plans if p != sub.plan])
        return "PATCH", f"/api/v1/subscriptions/{sub.external_id}", {"plan": plan}
    if target.subscriptions and kind < 0.50:
        sub_index = r.randrange(len(target.subscriptions))
        taken = {o.feature for o in target.overrides if o.subscription == sub_index}
        feature = r.choice([f for f in catalog.active_features if f.key not in taken])
        # Windows one hour long and j hours out: two changes never overlap on one subscription.
        start = epoch + timedelta(days=90, hours=j)
        body = {
            "feature": feature.key,
            "effect": "grant",
            "value": value_for(r, feature),
            "valid_from": start.isoformat().replace("+00:00", "Z"),
            "valid_until": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        }
        return "POST", f"/api/v1/subscriptions/{target.subscriptions[sub_index].external_id}/overrides", body
    traits = {"industry": r.choice(INDUSTRIES), "employees": r.randint(1, 5000), "region": r.choice(REGIONS)}
    return "PATCH", f"/api/v1/customers/{target.external_id}", {"traits": traits}


# --- writing it ----------------------------------------------------------------------------------


class SeedError(Exception):
    """The data set cannot be seeded or grown as asked (the message says why)."""


def populate(
    *,
    customers: int,
    seed: int = 1,
    scheduled: int = SCHEDULED,
    metered: int = METERED_CUSTOMERS,
    epoch: str | None = None,
    out: TextIO | None = None,
    verbosity: int = 1,
) -> None:
    """Seed the data set, or grow it to `customers` customers; progress goes to `out`
    (standard output by default) unless `verbosity` is 0. Needs Django set up."""
    Seeder(out=out or sys.stdout, verbosity=verbosity).run(
        customers=customers, seed=seed, epoch=epoch, scheduled=scheduled, metered=metered
    )


class Seeder:
    """Writes the definitions above to the database."""

    def __init__(self, *, out: TextIO, verbosity: int) -> None:
        self.out = out
        self.verbosity = verbosity

    def run(self, *, customers: int, seed: int, epoch: str | None, scheduled: int, metered: int) -> None:
        from audit.models import ScheduledChange
        from subscriptions.models import Customer

        if customers < 1:
            raise SeedError("--customers must be at least 1.")
        started = time.perf_counter()
        reason = f"Benchmark data set (seed_bench --seed {seed})."
        with request_scope(), change_context(actor=None, reason=reason, source="shell"):
            day = self._catalog(seed, epoch)
            at = datetime(day.year, day.month, day.day, tzinfo=UTC)
            catalog = Catalog(seed)
            existing = Customer.objects.filter(external_id__startswith="cust-").count()
            rows = self._customers(seed, catalog, at, start=existing, stop=customers)
            if not Customer.objects.filter(external_id=RACE_CUSTOMER).exists():
                rows += self._metered_customers(seed, catalog, at, metered)
            if not ScheduledChange.objects.filter(reason__startswith="Benchmark scheduled change").exists():
                rows += self._scheduled(seed, catalog, at, customers, scheduled)
            with transaction.atomic():
                # The rows bypassed the services: no answer cached before this seed may survive it.
                revisions.catalog_changed()
        total = Customer.objects.filter(external_id__startswith="cust-").count()
        self._say(
            f"bench.seed: {total} customers ({max(0, customers - existing)} added, {rows} rows) "
            f"in {time.perf_counter() - started:.1f} s."
        )

    def _say(self, text: str) -> None:
        if self.verbosity:
            self.out.write(text + "\n")

    # -- catalog

    def _catalog(self, seed: int, epoch: str | None) -> date:
        """Create the catalog unless present; returns the epoch day in force."""
        from catalog.models import Feature

        marker = Feature.objects.filter(
            key__in=[f"{k}-000" for k in ("switch", "quantity", "range", "custom")]
        )
        found = next((m for f in marker if (m := MARKER.search(f.description))), None)
        if found is not None:
            if int(found["seed"]) != seed:
                raise SeedError(f"This database was seeded with --seed {found['seed']}, not {seed}.")
            if epoch and epoch != found["epoch"]:
                raise SeedError(f"This database was seeded with --epoch {found['epoch']}.")
            day = date.fromisoformat(found["epoch"])
        else:
            day = date.fromisoformat(epoch) if epoch else datetime.now(UTC).date()
            with transaction.atomic():
                self._users()
                self._create_catalog(seed, day)
        if not Feature.objects.filter(key=HARD_METERED).exists():  # also on a data set seeded before it
            with transaction.atomic():
                self._create_metered_catalog(seed, day)
        return day

    def _users(self) -> None:
        """A superuser who authors the scheduled changes (and opens the admin), and a plain
        account for the read key."""
        from django.contrib.auth.models import User

        if not User.objects.filter(username=BENCH_USER).exists():
            User.objects.create_superuser(BENCH_USER, f"{BENCH_USER}@entitle.example", None)
        if not User.objects.filter(username=READER_USER).exists():
            User.objects.create_user(READER_USER, f"{READER_USER}@entitle.example", None)

    def _create_catalog(self, seed: int, day: date) -> None:
        from audit.bulk import bulk_create_audited
        from catalog import services as catalog_services
        from catalog.models import Entitlement, Feature, Item, Tag
        from segments import services as segment_services
        from segments.models import Condition, Segment, TargetingRule

        t0 = time.perf_counter()
        description = f"Benchmark feature (seed_bench seed={seed} epoch={day.isoformat()})."
        defs = feature_defs(seed)
        features = bulk_create_audited(
            Feature,
            [
                Feature(
                    key=d.key,
                    name=d.key.replace("-", " ").capitalize(),
                    description=description,
                    kind=d.kind,
                    status="archived" if d.archived else "active",
                    **d.fields,
                )
                for d in defs
            ],
        )
        by_key = {f.key: f for f in features}
        for feature in features:
            feature.remember_loaded_values()  # as if loaded: saving it unchanged records nothing
        tags = {t.key: t for t in Tag.objects.all()}
        context = {
            "actor": None,
            "reason": f"Benchmark data set (seed_bench --seed {seed}).",
            "source": "shell",
        }
        for d in defs:
            if d.tag and d.tag in tags:
                # Tags hand out guardian rows: through the service, which keeps them in step.
                catalog_services.feature_save(feature=by_key[d.key], tags=[tags[d.tag]], **context)
        items_defs = item_defs(seed, defs)
        items = bulk_create_audited(
            Item,
            [
                Item(
                    key=d.key,
                    kind=d.kind,
                    name=d.key.replace("-", " ").capitalize(),
                    rank=d.rank,
                    grace_days=d.grace_days,
                    status=d.status,
                    external_id=f"billing-{d.key}",
                )
                for d in items_defs
            ],
        )
        items_by_key = {i.key: i for i in items}
        bulk_create_audited(
            Entitlement,
            [
                Entitlement(item=items_by_key[d.key], feature=by_key[key], value=value)
                for d in items_defs
                for key, value in d.grants.items()
            ],
        )
        segments = bulk_create_audited(
            Segment,
            [
                Segment(
                    key=f"segment-{i:02d}", name=f"Segment {i:02d}", description=f"Benchmark segment {i}."
                )
                for i in range(SEGMENTS)
            ],
        )
        conditions = []
        for i, segment in enumerate(segments):
            for number, rule in enumerate(segment_rules(seed, i), start=1):
                conditions.extend(Condition(segment=segment, rule=number, **c) for c in rule)
        bulk_create_audited(Condition, conditions)
        if "product" in tags:
            for segment in segments[:3]:
                segment.remember_loaded_values()
                segment_services.segment_save(segment=segment, tags=[tags["product"]], **context)
        bulk_create_audited(
            TargetingRule,
            [
                TargetingRule(feature=by_key[f.key], position=position, segment=segments[s], value=value)
                for f, rules in targeting_defs(seed, defs)
                for position, (s, value) in enumerate(rules, start=1)
            ],
        )
        self._say(
            f"  catalog: {len(features)} features, {len(items)} items in {time.perf_counter() - t0:.1f} s"
        )

    def _create_metered_catalog(self, seed: int, day: date) -> None:
        from audit.bulk import bulk_create_audited
        from catalog.models import Entitlement, Feature, Item

        description = f"Benchmark metered feature (seed_bench seed={seed} epoch={day.isoformat()})."
        features = bulk_create_audited(
            Feature,
            [
                Feature(
                    key=d.key,
                    name=d.key.replace("-", " ").capitalize(),
                    description=description,
                    kind=d.kind,
                    **d.fields,
                )
                for d in METERED_FEATURES
            ],
        )
        by_key = {f.key: f for f in features}
        d = metered_item_def()
        (addon,) = bulk_create_audited(
            Item,
            [
                Item(
                    key=d.key,
                    kind=d.kind,
                    name="Metered usage",
                    rank=d.rank,
                    grace_days=d.grace_days,
                    status=d.status,
                    external_id=f"billing-{d.key}",
                )
            ],
        )
        bulk_create_audited(
            Entitlement,
            [Entitlement(item=addon, feature=by_key[key], value=value) for key, value in d.grants.items()],
        )

    # -- customers

    def _customers(self, seed: int, catalog: Catalog, epoch: datetime, *, start: int, stop: int) -> int:
        from catalog.models import Feature, Item
        from segments.models import Segment

        if start >= stop:
            return 0
        items = {i.key: i for i in Item.objects.all()}
        features = {f.key: f for f in Feature.objects.all()}
        segments = {int(s.key.split("-")[1]): s for s in Segment.objects.filter(key__startswith="segment-")}
        rows = 0
        for low in range(start, stop, CHUNK):
            t0 = time.perf_counter()
            defs = [customer_def(seed, i, catalog, epoch) for i in range(low, min(stop, low + CHUNK))]
            with transaction.atomic():
                rows += self._chunk(defs, items, features, segments)
            self._say(f"  customers {low}–{low + len(defs) - 1}: {time.perf_counter() - t0:.1f} s")
        return rows

    def _metered_customers(self, seed: int, catalog: Catalog, epoch: datetime, count: int) -> int:
        from catalog.models import Feature, Item

        t0 = time.perf_counter()
        items = {i.key: i for i in Item.objects.all()}
        features = {f.key: f for f in Feature.objects.all()}
        defs = [metered_customer_def(seed, i, catalog, epoch) for i in range(count)]
        defs.append(race_customer_def(catalog, epoch))
        with transaction.atomic():
            rows = self._chunk(defs, items, features, {})
        self._say(f"  metered customers: {len(defs)} in {time.perf_counter() - t0:.1f} s")
        return rows

    def _chunk(self, defs: list[CustomerDef], items, features, segments) -> int:
        from audit.bulk import bulk_create_audited
        from segments.models import SegmentMember
        from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon

        customers = bulk_create_audited(
            Customer,
            [
                Customer(external_id=d.external_id, name=d.name, country=d.country, traits=d.traits)
                for d in defs
            ],
        )
        subscriptions, per_customer = [], []
        for d, customer in zip(defs, customers, strict=True):
            mine = [
                Subscription(
                    external_id=s.external_id,
                    customer=customer,
                    plan=items[s.plan],
                    status=s.status,
                    trial_ends_at=s.trial_ends_at,
                    current_period_end=s.current_period_end,
                    past_due_since=s.past_due_since,
                )
                for s in d.subscriptions
            ]
            subscriptions.extend(mine)
            per_customer.append(mine)
        bulk_create_audited(Subscription, subscriptions)
        addons = [
            SubscriptionAddon(subscription=sub, addon=items[key], quantity=quantity)
            for d, mine in zip(defs, per_customer, strict=True)
            for s, sub in zip(d.subscriptions, mine, strict=True)
            for key, quantity in s.addons
        ]
        bulk_create_audited(SubscriptionAddon, addons)
        overrides = [
            Override(
                subscription=mine[o.subscription],
                feature=features[o.feature],
                effect=o.effect,
                value=o.value,
                valid_from=o.valid_from,
                valid_until=o.valid_until,
            )
            for d, mine in zip(defs, per_customer, strict=True)
            for o in d.overrides
        ]
        bulk_create_audited(Override, overrides)
        members = [
            SegmentMember(segment=segments[s], customer=customer, kind=kind)
            for d, customer in zip(defs, customers, strict=True)
            for s, kind in d.lists
        ]
        bulk_create_audited(SegmentMember, members)
        return len(customers) + len(subscriptions) + len(addons) + len(overrides) + len(members)

    # -- scheduled changes

    def _scheduled(self, seed: int, catalog: Catalog, epoch: datetime, customers: int, count: int) -> int:
        from django.contrib.auth.models import User

        from audit.bulk import bulk_create_audited
        from audit.models import ScheduledChange

        t0 = time.perf_counter()
        author = User.objects.get(username=BENCH_USER)
        changes = []
        known: dict[int, CustomerDef] = {}
        for j in range(count):
            method, path, body = scheduled_def(seed, j, customers, catalog, epoch, known)
            changes.append(
                ScheduledChange(
                    method=method,
                    path=path,
                    body=body,
                    effective_at=epoch + timedelta(days=1, seconds=30 * j),
                    reason=f"Benchmark scheduled change {j} (seed_bench --seed {seed}).",
                    created_by=author,
                )
            )
        with transaction.atomic():
            bulk_create_audited(ScheduledChange, changes)
        self._say(f"  scheduled changes: {len(changes)} in {time.perf_counter() - t0:.1f} s")
        return len(changes)


# --- the command line ----------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed",
        description="Seed (or grow) the benchmark data set: deterministic for a seed (see BENCHMARKS.md).",
    )
    parser.add_argument("--customers", type=int, required=True, help="How many customers in all.")
    parser.add_argument("--seed", type=int, default=1, help="The same seed gives the same data.")
    parser.add_argument(
        "--scheduled", type=int, default=SCHEDULED, help="Pending scheduled changes (first run only)."
    )
    parser.add_argument(
        "--metered",
        type=int,
        default=METERED_CUSTOMERS,
        help="Customers holding the metered features (first run only).",
    )
    parser.add_argument(
        "--epoch",
        help="The day dates are relative to (YYYY-MM-DD; default today, UTC; kept from the first run).",
    )
    parser.add_argument(
        "-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=1, help="0: print nothing."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    try:
        populate(
            customers=args.customers,
            seed=args.seed,
            scheduled=args.scheduled,
            metered=args.metered,
            epoch=args.epoch,
            verbosity=args.verbosity,
        )
    except SeedError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
