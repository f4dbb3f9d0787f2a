"""Properties of resolution over small random customers and features, no database.

Instants are drawn from a coarse hourly grid so that trial ends, grace ends and override
windows often coincide with each other and with `now`: the edges are where bugs live.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segments.matching import ConditionSpec, RuleSpec, SegmentSpec
from subscriptions.resolution import (
    CUSTOM,
    KINDS,
    METERED,
    QUANTITY,
    RANGE,
    SWITCH,
    UNLIMITED,
    AddonSpec,
    Answer,
    CustomerState,
    FeatureSpec,
    ItemGrant,
    OverrideSpec,
    SubscriptionSpec,
    TargetingRuleSpec,
    resolve_entitlements,
    resolve_feature,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LEVELS = ("email", "email+chat", "email+chat+sla")
MARKETS: tuple[frozenset[str], ...] = (frozenset(), frozenset(), frozenset(), frozenset({"DE", "FR"}))

# No example database: these runs must leave nothing behind in the repository.
FAST = settings(max_examples=200, deadline=None, database=None)

instants = st.integers(min_value=-72, max_value=72).map(lambda hours: NOW + timedelta(hours=hours))
maybe_instant = st.one_of(st.none(), instants, instants)  # mostly set: dates are what change
# Mostly values that fit some kind, a few that fit none (a level since removed, a stray text).
values = st.sampled_from((True, False, 0, 1, 5, 25, UNLIMITED, "email", "email+chat+sla", "v9"))

# A menu of segments rather than random ones: membership that changes over time (trial status,
# live plans) is what matters here, and drawing whole segments would make each example slow.
NOBODY: frozenset[str] = frozenset()
SEGMENT_MENU: tuple[tuple[frozenset[str], frozenset[str], tuple[RuleSpec, ...]], ...] = (
    (frozenset({"acme"}), NOBODY, ()),
    (NOBODY, frozenset({"acme"}), (RuleSpec((ConditionSpec("plan_rank", "gte", 10),)),)),
    (NOBODY, NOBODY, (RuleSpec((ConditionSpec("plan", "eq", "p1"),)),)),
    (NOBODY, NOBODY, (RuleSpec((ConditionSpec("status", "eq", "trialing"),)),)),
    (NOBODY, NOBODY, (RuleSpec((ConditionSpec("status", "eq", "expired"),)),)),
    (
        NOBODY,
        NOBODY,
        (RuleSpec((ConditionSpec("status", "in", ["past_due"]), ConditionSpec("plan_rank", "lte", 10))),),
    ),
    (
        NOBODY,
        NOBODY,
        (
            RuleSpec((ConditionSpec("country", "in", ["de", "FR"]),)),
            RuleSpec((ConditionSpec("traits.beta", "eq", True),)),
        ),
    ),
    (NOBODY, NOBODY, (RuleSpec(()),)),
)


def _segments(choices: tuple[int, int]) -> dict[str, SegmentSpec]:
    return {
        key: SegmentSpec(key, *SEGMENT_MENU[choice])
        for key, choice in zip(("seg-a", "seg-b"), choices, strict=True)
    }


menu = st.integers(0, len(SEGMENT_MENU) - 1)
segments_strategy = st.tuples(menu, menu).map(_segments)


def _with_levels(feature: FeatureSpec) -> FeatureSpec:
    levels = {CUSTOM: LEVELS, QUANTITY: (5, 25)}.get(feature.kind, ())
    if feature.kind == METERED:
        return dataclasses.replace(feature, period="month", period_anchor="billing_cycle", limit_type="hard")
    return dataclasses.replace(feature, levels=levels)


def features(*, markets: st.SearchStrategy[frozenset[str]] | None = None) -> st.SearchStrategy[FeatureSpec]:
    rule = st.builds(TargetingRuleSpec, st.sampled_from(("seg-a", "seg-b", "deleted")), values)
    return st.builds(
        FeatureSpec,
        key=st.just("f"),
        kind=st.sampled_from(KINDS),
        levels=st.just(()),
        # Mostly live, everywhere: archive and market blocks hide every other rule.
        archived=st.sampled_from((False,) * 7 + (True,)),
        markets=markets if markets is not None else st.sampled_from(MARKETS),
        keep_when_delinquent=st.booleans(),
        fallback=st.just("deny"),
        rules=st.lists(rule, max_size=2).map(tuple),
    ).map(_with_levels)


# Grants and overrides of another feature ("g") sit beside those of the one resolved ("f").
feature_keys = st.sampled_from(("f", "f", "g"))
item_grant = st.builds(ItemGrant, feature_keys, values)
addons = st.builds(
    AddonSpec, st.sampled_from(("a1", "a2")), st.integers(0, 3), st.lists(item_grant, max_size=2).map(tuple)
)
overrides = st.builds(
    OverrideSpec,
    id=st.just(0),  # numbered once the whole customer is drawn
    feature_key=feature_keys,
    effect=st.sampled_from(("grant", "grant", "revoke")),
    value=values,
    valid_from=maybe_instant,
    valid_until=maybe_instant,
)
subscriptions = st.builds(
    SubscriptionSpec,
    id=st.just(0),
    plan_key=st.sampled_from(("p1", "p2", "p3")),
    plan_rank=st.sampled_from((0, 10, 20)),
    grace_days=st.integers(0, 3),
    # Weighted to the statuses whose answers change over time.
    status=st.sampled_from(
        ("trialing", "trialing", "active", "past_due", "past_due", "paused", "canceled", "expired")
    ),
    trial_ends_at=maybe_instant,
    past_due_since=maybe_instant,
    plan_grants=st.lists(item_grant, min_size=1, max_size=2).map(tuple),
    addons=st.lists(addons, max_size=2).map(tuple),
    overrides=st.lists(overrides, max_size=2).map(tuple),
)


def _numbered(drafts: list[SubscriptionSpec]) -> tuple[SubscriptionSpec, ...]:
    """Unique subscription and override ids, as the database would give them."""
    override_ids = iter(range(1, 1000))
    return tuple(
        dataclasses.replace(
            sub,
            id=sub_id,
            overrides=tuple(dataclasses.replace(o, id=next(override_ids)) for o in sub.overrides),
        )
        for sub_id, sub in enumerate(drafts, start=1)
    )


customers = st.builds(
    CustomerState,
    external_id=st.sampled_from(("acme", "globex", "initech")),
    country=st.sampled_from(("DE", "FR", "de", "US", "")),
    traits=st.sampled_from(({}, {"beta": True}, {"beta": None})),
    subscriptions=st.lists(subscriptions, min_size=1, max_size=3).map(_numbered),
)


def reordered(state: CustomerState, arrange: Callable[[list[Any]], None]) -> CustomerState:
    """The same customer with every list (subscriptions, grants, add-ons, overrides) rearranged."""

    def mix(items: tuple[Any, ...]) -> tuple[Any, ...]:
        rearranged = list(items)
        arrange(rearranged)
        return tuple(rearranged)

    return dataclasses.replace(
        state,
        subscriptions=mix(
            tuple(
                dataclasses.replace(
                    sub,
                    plan_grants=mix(sub.plan_grants),
                    addons=mix(
                        tuple(dataclasses.replace(addon, grants=mix(addon.grants)) for addon in sub.addons)
                    ),
                    overrides=mix(sub.overrides),
                )
                for sub in state.subscriptions
            )
        ),
    )


def timeless(answer: Answer) -> Answer:
    return dataclasses.replace(answer, valid_until=None)


@FAST
@given(
    feature=features(markets=st.frozensets(st.sampled_from(("DE", "FR")), min_size=1)),
    state=customers,
    segments=segments_strategy,
    country=st.sampled_from(("US", "", "AT")),
    now=instants,
)
def test_resolve_feature__customer_outside_markets__always_off_with_source_market_or_archived(
    feature: FeatureSpec,
    state: CustomerState,
    segments: dict[str, SegmentSpec],
    country: str,
    now: datetime,
) -> None:
    answer = resolve_feature(feature, dataclasses.replace(state, country=country), segments, now)

    assert answer.enabled is False
    assert answer.unlimited is False
    assert answer.source == ("archived" if feature.archived else "market")
    # It never changes by itself; a metered answer still names the end of its usage period.
    assert answer.valid_until == answer.resets_at
    assert (answer.resets_at is None) is (feature.kind != METERED)


@FAST
@given(
    feature=features(markets=st.just(frozenset())),
    state=customers,
    segments=segments_strategy,
    since=maybe_instant,
    now=instants,
)
def test_resolve_feature__live_revoke_on_live_subscription__off_unless_archived(
    feature: FeatureSpec,
    state: CustomerState,
    segments: dict[str, SegmentSpec],
    since: datetime | None,
    now: datetime,
) -> None:
    valid_from = None if since is None else min(since, now)
    revoke = OverrideSpec(0, feature.key, "revoke", None, valid_from, None)  # id 0: the smallest
    holder = SubscriptionSpec(99, "p1", 10, 0, "active", None, None, (), (), (revoke,))
    state = dataclasses.replace(state, subscriptions=(*state.subscriptions, holder))

    answer = resolve_feature(feature, state, segments, now)

    assert answer.enabled is False
    assert answer.value == {SWITCH: False, QUANTITY: 0, RANGE: 0, METERED: 0}.get(feature.kind)
    assert answer.source == ("archived" if feature.archived else "override:0")


@FAST
@given(
    feature_list=st.tuples(features(), features().map(lambda f: dataclasses.replace(f, key="g"))),
    state=customers,
    segments=segments_strategy,
    now=instants,
    rng=st.randoms(use_true_random=False),
)
def test_resolve_entitlements__subscriptions_add_ons_overrides_grants_reordered__same_resolution(
    feature_list: tuple[FeatureSpec, FeatureSpec],
    state: CustomerState,
    segments: dict[str, SegmentSpec],
    now: datetime,
    rng: random.Random,
) -> None:
    original = resolve_entitlements(feature_list, state, segments, now)

    for arrange in (list.reverse, rng.shuffle):
        again = resolve_entitlements(feature_list, reordered(state, arrange), segments, now)

        assert dict(again.answers) == dict(original.answers)
        assert again.valid_until == original.valid_until


@FAST
@given(
    feature=features(),
    state=customers,
    segments=segments_strategy,
    now=instants,
    offset=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_resolve_feature__any_instant_before_valid_until__same_answer_and_differs_at_valid_until(
    feature: FeatureSpec,
    state: CustomerState,
    segments: dict[str, SegmentSpec],
    now: datetime,
    offset: float,
) -> None:
    answer = resolve_feature(feature, state, segments, now)
    end = answer.valid_until

    # Probe every instant the data names (and the instant just before it), worked out here
    # rather than taken from boundaries(), plus one drawn inside the window.
    horizon = end if end is not None else now + timedelta(days=30)
    named: list[datetime | None] = [now + (horizon - now) * offset]
    for sub in state.subscriptions:
        named += [sub.trial_ends_at, *(o.valid_from for o in sub.overrides)]
        named += [o.valid_until for o in sub.overrides]
        if sub.past_due_since is not None:
            named.append(sub.past_due_since + timedelta(days=sub.grace_days))
    probes = [t for t in named if t is not None]
    probes += [t - timedelta(microseconds=1) for t in probes]
    for t in probes:
        if now <= t < horizon:
            later = resolve_feature(feature, state, segments, t)
            assert timeless(later) == timeless(answer), t
            assert later.valid_until == end, t

    if end is not None:
        assert end > now
        assert timeless(resolve_feature(feature, state, segments, end)) != timeless(answer)
