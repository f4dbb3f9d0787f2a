"""Resolution, table-driven, no database: every line of the precedence, the
lifecycle phases, the source names and how long each answer holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segments.matching import (
    COUNTRY,
    PLAN_RANK,
    STATUS,
    ConditionSpec,
    CustomerFacts,
    LivePlan,
    RuleSpec,
    SegmentSpec,
)
from subscriptions.resolution import (
    CUSTOM,
    QUANTITY,
    RANGE,
    SWITCH,
    UNLIMITED,
    AddonSpec,
    Answer,
    Contribution,
    CustomerState,
    FeatureSpec,
    ItemGrant,
    OverrideSpec,
    SubscriptionSpec,
    TargetingRuleSpec,
    boundaries,
    customer_facts,
    resolve_entitlements,
    resolve_feature,
    subscription_phase,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# --- builders ----------------------------------------------------------------------------------


def feature(
    key: str,
    kind: str,
    *,
    levels: tuple[object, ...] = (),
    archived: bool = False,
    markets: tuple[str, ...] = (),
    keep_when_delinquent: bool = False,
    rules: tuple[tuple[str, object], ...] = (),
) -> FeatureSpec:
    return FeatureSpec(
        key=key,
        kind=kind,
        levels=levels,
        archived=archived,
        markets=frozenset(markets),
        keep_when_delinquent=keep_when_delinquent,
        fallback="deny",
        rules=tuple(TargetingRuleSpec(segment, value) for segment, value in rules),
    )


def grant(feature_key: str, value: object = True) -> ItemGrant:
    return ItemGrant(feature_key, value)


def addon(key: str, quantity: int, *grants: ItemGrant) -> AddonSpec:
    return AddonSpec(key, quantity, grants)


def override(
    id: int,
    feature_key: str,
    effect: str = "grant",
    value: object = True,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> OverrideSpec:
    return OverrideSpec(id, feature_key, effect, value, since, until)


def sub(
    plan: str,
    *grants: ItemGrant,
    id: int = 1,
    rank: int = 10,
    status: str = "active",
    grace_days: int = 7,
    trial_ends_at: datetime | None = None,
    past_due_since: datetime | None = None,
    addons: tuple[AddonSpec, ...] = (),
    overrides: tuple[OverrideSpec, ...] = (),
) -> SubscriptionSpec:
    return SubscriptionSpec(
        id=id,
        plan_key=plan,
        plan_rank=rank,
        grace_days=grace_days,
        status=status,
        trial_ends_at=trial_ends_at,
        past_due_since=past_due_since,
        plan_grants=grants,
        addons=addons,
        overrides=overrides,
    )


def customer(
    *subscriptions: SubscriptionSpec, external_id: str = "acme", country: str = "DE"
) -> CustomerState:
    return CustomerState(external_id, country, {"industry": "media"}, subscriptions)


def summary(answer: Answer) -> tuple[bool, object, bool, str]:
    return (answer.enabled, answer.value, answer.unlimited, answer.source)


# --- the demo catalogue (the demo) -----------------------------------------------------------

MAX_MEMBERS = feature("max-members", QUANTITY, levels=(5, 25))
K4 = feature("4k-streaming", SWITCH)
STREAMS = feature("max-simultaneous-streams", QUANTITY, levels=(1, 4))
API_CALLS = feature("api-calls-per-day", RANGE)
SUPPORT = feature("support-level", CUSTOM, levels=("email", "email+chat", "email+chat+sla"))
EXPORT = feature("data-export", SWITCH, keep_when_delinquent=True)
CHANGE_REQUEST = feature("change-request", SWITCH, rules=(("basic-or-higher", True),))
CHANGE_REQUEST_VERSION = feature(
    "change-request-version", CUSTOM, levels=("v1", "v2"), rules=(("beta", "v2"),)
)
GERMAN_4K = feature("4k-streaming", SWITCH, markets=("DE", "AT"))

SEATS_5 = grant("max-members", 5)
SEATS_25 = grant("max-members", 25)
SEATS_UNLIMITED = grant("max-members", UNLIMITED)
EXTRA_SEATS = "extra-seats"


def starter(**kwargs: object) -> SubscriptionSpec:
    return sub("starter", SEATS_5, rank=10, **kwargs)  # type: ignore[arg-type]


def business(**kwargs: object) -> SubscriptionSpec:
    return sub("business", SEATS_25, rank=20, **kwargs)  # type: ignore[arg-type]


def enterprise(**kwargs: object) -> SubscriptionSpec:
    return sub("enterprise", SEATS_UNLIMITED, rank=30, **kwargs)  # type: ignore[arg-type]


def extra_seats(quantity: int) -> AddonSpec:
    return addon(EXTRA_SEATS, quantity, grant("max-members", 5))


def premium(**kwargs: object) -> SubscriptionSpec:
    grants = (grant("4k-streaming"), grant("max-simultaneous-streams", 4), grant("data-export"))
    return sub("streaming-premium", *grants, rank=20, **kwargs)  # type: ignore[arg-type]


def standard(**kwargs: object) -> SubscriptionSpec:
    grants = (grant("max-simultaneous-streams", 1), grant("data-export"))
    return sub("streaming-standard", *grants, rank=10, **kwargs)  # type: ignore[arg-type]


def segment(
    key: str,
    *conditions: ConditionSpec,
    included: tuple[str, ...] = (),
    excluded: tuple[str, ...] = (),
) -> SegmentSpec:
    rules = (RuleSpec(conditions),) if conditions else ()
    return SegmentSpec(key, frozenset(included), frozenset(excluded), rules)


SEGMENTS = {
    s.key: s
    for s in (
        segment("beta", included=("acme", "globex")),
        segment("basic-or-higher", ConditionSpec(PLAN_RANK, "gte", 10)),
        segment("germany", ConditionSpec(COUNTRY, "eq", "DE"), excluded=("initech",)),
        segment("lapsed-trials", ConditionSpec(STATUS, "eq", "expired")),
        segment("nobody"),
    )
}


# --- 1. geography and archive ---------------------------------------------------------------------

LIVE_GRANT = override(9, "4k-streaming")
GEOGRAPHY = [
    pytest.param(
        GERMAN_4K, customer(premium()), (True, True, False, "plan:streaming-premium"), id="in-market"
    ),
    pytest.param(
        GERMAN_4K,
        customer(premium(), country="de"),
        (True, True, False, "plan:streaming-premium"),
        id="in-market-lower-case-country",
    ),
    pytest.param(
        GERMAN_4K, customer(premium(), country="US"), (False, False, False, "market"), id="out-of-market"
    ),
    pytest.param(
        GERMAN_4K, customer(premium(), country=""), (False, False, False, "market"), id="unknown-country"
    ),
    pytest.param(
        K4,
        customer(premium(), country=""),
        (True, True, False, "plan:streaming-premium"),
        id="empty-markets-everywhere",
    ),
    pytest.param(
        GERMAN_4K,
        customer(standard(overrides=(LIVE_GRANT,)), country="US"),
        (False, False, False, "market"),
        id="out-of-market-beats-override",
    ),
    pytest.param(
        feature("4k-streaming", SWITCH, markets=("DE",), rules=(("germany", True),)),
        customer(standard(), country="FR"),
        (False, False, False, "market"),
        id="out-of-market-beats-segment",
    ),
    pytest.param(
        feature("4k-streaming", SWITCH, archived=True),
        customer(premium()),
        (False, False, False, "archived"),
        id="archived",
    ),
    pytest.param(
        feature("4k-streaming", SWITCH, archived=True),
        customer(standard(overrides=(LIVE_GRANT,))),
        (False, False, False, "archived"),
        id="archived-beats-override",
    ),
    pytest.param(
        feature("4k-streaming", SWITCH, archived=True, markets=("DE",)),
        customer(premium(), country="US"),
        (False, False, False, "archived"),
        id="archived-named-before-market",
    ),
    pytest.param(
        feature("max-members", QUANTITY, archived=True),
        customer(business()),
        (False, 0, False, "archived"),
        id="archived-quantity-is-zero",
    ),
    pytest.param(
        feature("support-level", CUSTOM, levels=("email",), markets=("FR",)),
        customer(),
        (False, None, False, "market"),
        id="out-of-market-custom-is-none",
    ),
]


@pytest.mark.parametrize(("spec", "state", "expected"), GEOGRAPHY)
def test_resolve_feature__archived_or_outside_markets__off_whatever_else_applies(
    spec: FeatureSpec, state: CustomerState, expected: tuple[object, ...]
) -> None:
    assert summary(resolve_feature(spec, state, SEGMENTS, NOW)) == expected


# --- 2. overrides -------------------------------------------------------------------------------

SEATS_40 = override(7, "max-members", "grant", 40)
OVERRIDES = [
    pytest.param(
        K4,
        customer(standard(overrides=(override(3, "4k-streaming"),))),
        (True, True, False, "override:3"),
        id="switch-grant",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(SEATS_40,))),
        (True, 40, False, "override:7"),
        id="negotiated-40-seats-replaces-plan",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 10),))),
        (True, 10, False, "override:7"),
        id="grant-below-plan-still-decides",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", UNLIMITED),))),
        (True, None, True, "override:7"),
        id="grant-unlimited",
    ),
    pytest.param(
        K4,
        customer(premium(overrides=(override(4, "4k-streaming", "revoke", None),))),
        (False, False, False, "override:4"),
        id="revoke-beats-plan",
    ),
    pytest.param(
        K4,
        customer(premium(overrides=(override(2, "4k-streaming"), override(5, "4k-streaming", "revoke")))),
        (False, False, False, "override:5"),
        id="revoke-beats-grant-with-smaller-id",
    ),
    pytest.param(
        K4,
        customer(
            premium(id=1, overrides=(override(8, "4k-streaming", "revoke"),)),
            standard(id=2, overrides=(override(6, "4k-streaming", "revoke"), override(1, "4k-streaming"))),
        ),
        (False, False, False, "override:6"),
        id="smallest-revoke-id-across-subscriptions",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(
                overrides=(
                    override(3, "max-members", "grant", 30),
                    override(2, "max-members", "grant", 40),
                    override(1, "max-members", "grant", 35),
                )
            )
        ),
        (True, 40, False, "override:2"),
        id="highest-grant-not-sum",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(
                overrides=(
                    override(3, "max-members", "grant", UNLIMITED),
                    override(2, "max-members", "grant", 1000),
                )
            )
        ),
        (True, None, True, "override:3"),
        id="unlimited-grant-highest",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(id=1, overrides=(override(9, "max-members", "grant", 40),)),
            starter(id=2, overrides=(override(4, "max-members", "grant", 40),)),
        ),
        (True, 40, False, "override:4"),
        id="equal-grants-smallest-id",
    ),
    pytest.param(
        SUPPORT,
        customer(
            sub(
                "basic",
                overrides=(
                    override(1, "support-level", "grant", "email+chat+sla"),
                    override(2, "support-level", "grant", "email+chat"),
                ),
            )
        ),
        (True, "email+chat+sla", False, "override:1"),
        id="custom-highest-level",
    ),
    pytest.param(
        SUPPORT,
        customer(
            sub(
                "basic",
                grant("support-level", "email"),
                overrides=(override(1, "support-level", "grant", "platinum"),),
            )
        ),
        (True, "email", False, "plan:basic"),
        id="grant-of-unknown-level-ignored",
    ),
    pytest.param(
        K4,
        customer(standard(overrides=(override(3, "max-members", "grant", 40),))),
        (False, False, False, "default"),
        id="override-of-other-feature-ignored",
    ),
    # windows: live on [valid_from, valid_until)
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, since=NOW + HOUR),))),
        (True, 25, False, "plan:business"),
        id="window-not-started",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, since=NOW),))),
        (True, 40, False, "override:7"),
        id="window-starts-now",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(overrides=(override(7, "max-members", "grant", 40, since=NOW - DAY, until=NOW + DAY),))
        ),
        (True, 40, False, "override:7"),
        id="window-inside",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, since=NOW - DAY, until=NOW),))),
        (True, 25, False, "plan:business"),
        id="window-ended-now",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, until=NOW - HOUR),))),
        (True, 25, False, "plan:business"),
        id="window-open-start-ended",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, until=NOW + HOUR),))),
        (True, 40, False, "override:7"),
        id="window-open-start",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, since=NOW - DAY),))),
        (True, 40, False, "override:7"),
        id="window-open-end",
    ),
    pytest.param(
        K4,
        customer(
            premium(
                overrides=(
                    override(4, "4k-streaming", "revoke", until=NOW),
                    override(5, "4k-streaming", since=NOW - DAY),
                )
            )
        ),
        (True, True, False, "override:5"),
        id="ended-revoke-leaves-grant",
    ),
    # only live subscriptions carry overrides
    pytest.param(
        K4,
        customer(standard(status="canceled", overrides=(LIVE_GRANT,))),
        (False, False, False, "default"),
        id="grant-on-canceled-ignored",
    ),
    pytest.param(
        K4,
        customer(standard(status="paused", overrides=(LIVE_GRANT,))),
        (False, False, False, "default"),
        id="grant-on-paused-ignored",
    ),
    pytest.param(
        K4,
        customer(standard(status="trialing", trial_ends_at=NOW, overrides=(LIVE_GRANT,))),
        (False, False, False, "default"),
        id="grant-on-ended-trial-ignored",
    ),
    pytest.param(
        K4,
        customer(
            premium(status="expired", id=1, overrides=(override(1, "4k-streaming", "revoke"),)), premium(id=2)
        ),
        (True, True, False, "plan:streaming-premium"),
        id="revoke-on-expired-ignored",
    ),
    pytest.param(
        K4,
        customer(standard(status="past_due", past_due_since=NOW - 30 * DAY, overrides=(LIVE_GRANT,))),
        (True, True, False, "override:9"),
        id="grant-on-delinquent-applies",
    ),
]


@pytest.mark.parametrize(("spec", "state", "expected"), OVERRIDES)
def test_resolve_feature__live_override__decides_before_segments_and_plans(
    spec: FeatureSpec, state: CustomerState, expected: tuple[object, ...]
) -> None:
    assert summary(resolve_feature(spec, state, SEGMENTS, NOW)) == expected


# --- 3. targeting rules ---------------------------------------------------------------------------

BASIC_V1 = sub("basic", grant("change-request-version", "v1"), rank=10)
TARGETING = [
    pytest.param(
        CHANGE_REQUEST_VERSION,
        customer(BASIC_V1),
        (True, "v2", False, "segment:beta"),
        id="included-beta-user-gets-v2",
    ),
    pytest.param(
        CHANGE_REQUEST_VERSION,
        customer(BASIC_V1, external_id="initech"),
        (True, "v1", False, "plan:basic"),
        id="other-user-keeps-plan-v1",
    ),
    pytest.param(
        CHANGE_REQUEST,
        customer(sub("basic", rank=10)),
        (True, True, False, "segment:basic-or-higher"),
        id="rule-plan-rank-gte-10",
    ),
    pytest.param(
        CHANGE_REQUEST,
        customer(sub("free", rank=0)),
        (False, False, False, "default"),
        id="rule-rank-too-low",
    ),
    pytest.param(CHANGE_REQUEST, customer(), (False, False, False, "default"), id="rule-no-live-plan"),
    pytest.param(
        CHANGE_REQUEST,
        customer(sub("basic", rank=10, status="canceled")),
        (False, False, False, "default"),
        id="rule-plan-not-live",
    ),
    pytest.param(
        feature("x", SWITCH, rules=(("germany", True),)),
        customer(external_id="initech"),
        (False, False, False, "default"),
        id="excluded-beats-rule",
    ),
    pytest.param(
        feature("version", CUSTOM, levels=("v1", "v2", "v3"), rules=(("germany", "v1"), ("beta", "v3"))),
        customer(),
        (True, "v1", False, "segment:germany"),
        id="first-matching-rule-wins-not-highest",
    ),
    pytest.param(
        feature("version", CUSTOM, levels=("v1", "v2", "v3"), rules=(("nobody", "v1"), ("beta", "v3"))),
        customer(),
        (True, "v3", False, "segment:beta"),
        id="second-rule-when-first-does-not-hold",
    ),
    pytest.param(
        feature("version", CUSTOM, levels=("v1", "v2"), rules=(("deleted", "v1"), ("beta", "v2"))),
        customer(),
        (True, "v2", False, "segment:beta"),
        id="unknown-segment-skipped",
    ),
    pytest.param(
        feature("version", CUSTOM, levels=("v1", "v2"), rules=(("beta", "v9"), ("germany", "v1"))),
        customer(),
        (True, "v1", False, "segment:germany"),
        id="rule-value-not-a-level-skipped",
    ),
    pytest.param(
        feature("4k-streaming", SWITCH, rules=(("beta", False),)),
        customer(premium()),
        (False, False, False, "segment:beta"),
        id="rule-serving-off-beats-plan",
    ),
    pytest.param(
        feature("max-members", QUANTITY, rules=(("beta", 50),)),
        customer(business()),
        (True, 50, False, "segment:beta"),
        id="rule-beats-plan",
    ),
    pytest.param(
        feature("max-members", QUANTITY, rules=(("beta", UNLIMITED),)),
        customer(),
        (True, None, True, "segment:beta"),
        id="rule-serving-unlimited",
    ),
    pytest.param(
        feature("max-members", QUANTITY, rules=(("beta", 50),)),
        customer(business(overrides=(SEATS_40,))),
        (True, 40, False, "override:7"),
        id="override-beats-rule",
    ),
    pytest.param(
        feature("win-back", SWITCH, rules=(("lapsed-trials", True),)),
        customer(sub("basic", status="trialing", trial_ends_at=NOW - DAY)),
        (True, True, False, "segment:lapsed-trials"),
        id="ended-trial-reads-expired",
    ),
]


@pytest.mark.parametrize(("spec", "state", "expected"), TARGETING)
def test_resolve_feature__targeting_rules__first_holding_segment_serves_its_value(
    spec: FeatureSpec, state: CustomerState, expected: tuple[object, ...]
) -> None:
    assert summary(resolve_feature(spec, state, SEGMENTS, NOW)) == expected


# --- 4. plans and add-ons -------------------------------------------------------------------------

PREMIUM_SUPPORT = addon("premium-support", 1, grant("support-level", "email+chat+sla"))
GRANTS = [
    pytest.param(
        MAX_MEMBERS,
        customer(business(addons=(extra_seats(2),))),
        (True, 35, False, "plan:business"),
        id="business-plus-two-extra-seats",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(starter(addons=(extra_seats(2),))),
        (True, 15, False, "addon:extra-seats"),
        id="add-on-largest-contributor",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(starter(addons=(extra_seats(1),))),
        (True, 10, False, "plan:starter"),
        id="plan-wins-tie-with-add-on",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(starter(addons=(extra_seats(0),))),
        (True, 5, False, "plan:starter"),
        id="add-on-quantity-zero",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(sub("none", addons=(extra_seats(3),))),
        (True, 15, False, "addon:extra-seats"),
        id="add-on-only",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            starter(
                addons=(
                    addon("seats-b", 1, grant("max-members", 10)),
                    addon("seats-a", 2, grant("max-members", 5)),
                )
            )
        ),
        (True, 25, False, "addon:seats-a"),
        id="add-on-tie-smaller-key",
    ),
    pytest.param(
        MAX_MEMBERS, customer(enterprise()), (True, None, True, "plan:enterprise"), id="enterprise-unlimited"
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(enterprise(addons=(extra_seats(4),))),
        (True, None, True, "plan:enterprise"),
        id="unlimited-wins-over-sum",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(starter(addons=(addon("all-seats", 1, SEATS_UNLIMITED),))),
        (True, None, True, "addon:all-seats"),
        id="unlimited-add-on-largest",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(id=1), starter(id=2)),
        (True, 30, False, "plan:business"),
        id="several-subscriptions-summed",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(starter(id=1), starter(id=2), business(id=3)),
        (True, 35, False, "plan:business"),
        id="same-plan-twice-one-contributor",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(starter(id=1), starter(id=2), sub("team", grant("max-members", 8), id=3)),
        (True, 18, False, "plan:starter"),
        id="same-plan-twice-adds-up-for-source",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(id=1), starter(id=2, status="canceled")),
        (True, 25, False, "plan:business"),
        id="dead-subscription-gives-nothing",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(sub("odd", grant("max-members", "lots"), grant("max-members", True))),
        (False, 0, False, "default"),
        id="quantity-not-a-number-ignored",
    ),
    pytest.param(
        API_CALLS,
        customer(
            sub(
                "basic",
                grant("api-calls-per-day", 100),
                addons=(addon("calls", 2, grant("api-calls-per-day", 50)),),
            )
        ),
        (True, 200, False, "plan:basic"),
        id="range-summed",
    ),
    pytest.param(
        K4, customer(premium()), (True, True, False, "plan:streaming-premium"), id="switch-from-plan"
    ),
    pytest.param(
        K4,
        customer(standard(addons=(addon("4k-pack", 1, grant("4k-streaming")),))),
        (True, True, False, "addon:4k-pack"),
        id="switch-from-add-on",
    ),
    pytest.param(
        K4,
        customer(premium(addons=(addon("4k-pack", 3, grant("4k-streaming")),))),
        (True, True, False, "plan:streaming-premium"),
        id="switch-plan-and-add-on-plan-named",
    ),
    pytest.param(K4, customer(standard()), (False, False, False, "default"), id="switch-not-granted"),
    pytest.param(
        SUPPORT,
        customer(sub("basic", grant("support-level", "email"), addons=(PREMIUM_SUPPORT,))),
        (True, "email+chat+sla", False, "addon:premium-support"),
        id="custom-highest-level-from-add-on",
    ),
    pytest.param(
        SUPPORT,
        customer(
            sub("advanced", grant("support-level", "email+chat"), id=1),
            sub("basic", grant("support-level", "email"), id=2),
        ),
        (True, "email+chat", False, "plan:advanced"),
        id="custom-highest-across-subscriptions",
    ),
    pytest.param(
        SUPPORT,
        customer(
            sub("b", grant("support-level", "email+chat")),
            sub("a", grant("support-level", "email+chat"), id=2),
        ),
        (True, "email+chat", False, "plan:a"),
        id="custom-tie-smaller-key",
    ),
    pytest.param(
        SUPPORT,
        customer(sub("basic", grant("support-level", "phone"))),
        (False, None, False, "default"),
        id="custom-value-not-a-level-ignored",
    ),
    pytest.param(
        SUPPORT, customer(premium()), (False, None, False, "default"), id="nothing-granted-custom-none"
    ),
    pytest.param(MAX_MEMBERS, customer(), (False, 0, False, "default"), id="no-subscription-quantity-zero"),
]


@pytest.mark.parametrize(("spec", "state", "expected"), GRANTS)
def test_resolve_feature__plan_and_add_on_grants__combined_and_named_by_largest(
    spec: FeatureSpec, state: CustomerState, expected: tuple[object, ...]
) -> None:
    assert summary(resolve_feature(spec, state, SEGMENTS, NOW)) == expected


# --- lifecycle ----------------------------------------------------------------------------------

LATE = NOW - 30 * DAY  # past_due for a month: beyond any grace below
PHASES = [
    pytest.param(
        K4,
        customer(premium(status="trialing", trial_ends_at=NOW + HOUR)),
        (True, True, False, "plan:streaming-premium"),
        id="trial-before-end",
    ),
    pytest.param(
        K4,
        customer(premium(status="trialing", trial_ends_at=NOW)),
        (False, False, False, "default"),
        id="trial-at-end",
    ),
    pytest.param(
        K4,
        customer(premium(status="trialing", trial_ends_at=NOW - DAY)),
        (False, False, False, "default"),
        id="trial-after-end",
    ),
    pytest.param(
        K4,
        customer(premium(status="trialing")),
        (True, True, False, "plan:streaming-premium"),
        id="trial-without-end",
    ),
    pytest.param(
        K4,
        customer(premium(status="past_due", past_due_since=NOW - 6 * DAY)),
        (True, True, False, "plan:streaming-premium"),
        id="past-due-within-grace",
    ),
    pytest.param(
        K4,
        customer(premium(status="past_due", past_due_since=NOW - 7 * DAY)),
        (False, False, False, "default"),
        id="past-due-grace-ends-now",
    ),
    pytest.param(
        K4,
        customer(premium(status="past_due", past_due_since=LATE)),
        (False, False, False, "default"),
        id="past-due-beyond-grace",
    ),
    pytest.param(
        K4,
        customer(premium(status="past_due", past_due_since=NOW - DAY, grace_days=0)),
        (False, False, False, "default"),
        id="past-due-no-grace",
    ),
    pytest.param(
        K4,
        customer(premium(status="past_due")),
        (True, True, False, "plan:streaming-premium"),
        id="past-due-since-unknown",
    ),
    pytest.param(
        EXPORT,
        customer(premium(status="past_due", past_due_since=LATE)),
        (True, True, False, "plan:streaming-premium"),
        id="delinquent-keeps-keep-when-delinquent",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(id=1, status="past_due", past_due_since=LATE), starter(id=2)),
        (True, 5, False, "plan:starter"),
        id="delinquent-subscription-skipped-other-counts",
    ),
    pytest.param(
        feature("max-members", QUANTITY, keep_when_delinquent=True),
        customer(business(status="past_due", past_due_since=LATE, addons=(extra_seats(2),))),
        (True, 35, False, "plan:business"),
        id="delinquent-keeps-add-ons-of-kept-feature",
    ),
    pytest.param(K4, customer(premium(status="paused")), (False, False, False, "default"), id="paused"),
    pytest.param(K4, customer(premium(status="canceled")), (False, False, False, "default"), id="canceled"),
    pytest.param(K4, customer(premium(status="expired")), (False, False, False, "default"), id="expired"),
    pytest.param(
        K4,
        customer(premium(status="incomplete")),
        (False, False, False, "default"),
        id="unknown-status-gives-nothing",
    ),
    pytest.param(
        EXPORT,
        customer(premium(status="canceled")),
        (False, False, False, "default"),
        id="canceled-gives-not-even-kept-features",
    ),
]


@pytest.mark.parametrize(("spec", "state", "expected"), PHASES)
def test_resolve_feature__subscription_phase__only_live_subscriptions_give(
    spec: FeatureSpec, state: CustomerState, expected: tuple[object, ...]
) -> None:
    assert summary(resolve_feature(spec, state, SEGMENTS, NOW)) == expected


PHASE_TABLE = [
    pytest.param(sub("p", status="active"), "live", id="active"),
    pytest.param(sub("p", status="trialing", trial_ends_at=NOW + HOUR), "live", id="trialing"),
    pytest.param(sub("p", status="trialing", trial_ends_at=NOW), "dead", id="trial-ended"),
    pytest.param(sub("p", status="past_due", past_due_since=NOW - DAY), "live", id="within-grace"),
    pytest.param(sub("p", status="past_due", past_due_since=LATE), "delinquent", id="beyond-grace"),
    pytest.param(sub("p", status="past_due"), "live", id="past-due-since-unknown"),
    pytest.param(sub("p", status="paused"), "dead", id="paused"),
    pytest.param(sub("p", status="canceled"), "dead", id="canceled"),
    pytest.param(sub("p", status="expired"), "dead", id="expired"),
]


@pytest.mark.parametrize(("spec", "phase"), PHASE_TABLE)
def test_subscription_phase__status_and_dates__as_in_table(spec: SubscriptionSpec, phase: str) -> None:
    assert subscription_phase(spec, NOW) == phase


def test_customer_facts__mixed_subscriptions__live_and_delinquent_plans_and_effective_statuses() -> None:
    state = customer(
        business(id=1),
        premium(id=2, status="past_due", past_due_since=LATE),
        sub("basic", id=3, status="trialing", trial_ends_at=NOW - DAY),
        sub("starter", id=4, status="canceled"),
    )

    facts = customer_facts(state, NOW)

    assert facts == CustomerFacts(
        external_id="acme",
        country="DE",
        traits={"industry": "media"},
        live_plans=(LivePlan("business", 20), LivePlan("streaming-premium", 20)),
        statuses=frozenset({"active", "past_due", "expired", "canceled"}),
    )


def test_boundaries__overrides_trials_and_graces__future_instants_sorted_without_duplicates() -> None:
    state = customer(
        business(id=1, overrides=(override(1, "x", since=NOW - DAY, until=NOW + 3 * DAY),)),
        premium(id=2, status="trialing", trial_ends_at=NOW + DAY),
        standard(id=3, status="past_due", past_due_since=NOW - DAY, grace_days=3),
        starter(id=4, status="canceled", overrides=(override(2, "x", until=NOW + 5 * DAY),)),
        starter(id=5, overrides=(override(3, "x", since=NOW + DAY),)),
    )

    assert boundaries(state, NOW) == [NOW + DAY, NOW + 2 * DAY, NOW + 3 * DAY]


# --- valid_until ----------------------------------------------------------------------------------

VALID_UNTIL = [
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, until=NOW + DAY),))),
        NOW + DAY,
        id="override-end",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, since=NOW + HOUR),))),
        NOW + HOUR,
        id="override-start",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(
                overrides=(
                    override(7, "max-members", "grant", 40, until=NOW + HOUR),
                    override(8, "max-members", "grant", 30, until=NOW + DAY),
                )
            )
        ),
        NOW + HOUR,
        id="higher-grant-ends-first",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(
                overrides=(
                    override(7, "max-members", "grant", 25, until=NOW + HOUR),
                    override(8, "max-members", "grant", 30, until=NOW + DAY),
                )
            )
        ),
        NOW + DAY,
        id="lower-grant-ending-first-changes-nothing",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(
            business(
                overrides=(
                    override(7, "max-members", "grant", 40, until=NOW + HOUR),
                    override(8, "max-members", "grant", 40, until=NOW + DAY),
                )
            )
        ),
        NOW + HOUR,
        id="same-value-other-override-source-changes",
    ),
    pytest.param(
        K4, customer(premium(status="trialing", trial_ends_at=NOW + 3 * DAY)), NOW + 3 * DAY, id="trial-end"
    ),
    pytest.param(
        K4, customer(premium(status="past_due", past_due_since=NOW - DAY)), NOW + 6 * DAY, id="grace-end"
    ),
    pytest.param(
        EXPORT,
        customer(premium(status="past_due", past_due_since=NOW - DAY)),
        None,
        id="grace-end-keeps-kept-feature",
    ),
    pytest.param(
        K4,
        customer(premium(id=1), premium(id=2, status="trialing", trial_ends_at=NOW + DAY)),
        None,
        id="trial-end-other-plan-still-gives",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "4k-streaming", until=NOW + DAY),))),
        None,
        id="other-features-override-ends",
    ),
    pytest.param(K4, customer(premium()), None, id="nothing-ends"),
    pytest.param(
        MAX_MEMBERS,
        customer(business(overrides=(override(7, "max-members", "grant", 40, until=NOW),))),
        None,
        id="override-ended-already",
    ),
    pytest.param(
        CHANGE_REQUEST,
        customer(sub("basic", rank=10, status="trialing", trial_ends_at=NOW + 2 * DAY)),
        NOW + 2 * DAY,
        id="segment-membership-ends-with-trial",
    ),
    pytest.param(
        GERMAN_4K,
        customer(premium(status="trialing", trial_ends_at=NOW + DAY), country="US"),
        None,
        id="market-block-never-ends",
    ),
]


@pytest.mark.parametrize(("spec", "state", "valid_until"), VALID_UNTIL)
def test_resolve_feature__future_change__valid_until_first_instant_answer_differs(
    spec: FeatureSpec, state: CustomerState, valid_until: datetime | None
) -> None:
    answer = resolve_feature(spec, state, SEGMENTS, NOW)

    assert answer.valid_until == valid_until
    if valid_until is not None:
        later = resolve_feature(spec, state, SEGMENTS, valid_until)
        assert summary(later) != summary(answer)
        just_before = resolve_feature(spec, state, SEGMENTS, valid_until - timedelta(seconds=1))
        assert summary(just_before) == summary(answer)


# --- the demo's examples ------------------------------------------------------------------------


def test_resolve_feature__business_with_two_extra_seats__35_members_from_plan() -> None:
    acme = customer(business(addons=(extra_seats(2),)))

    answer = resolve_feature(MAX_MEMBERS, acme, SEGMENTS, NOW)

    assert answer == Answer(
        feature_key="max-members",
        kind=QUANTITY,
        enabled=True,
        value=35,
        unlimited=False,
        source="plan:business",
        valid_until=None,
        fallback="deny",
    )


def test_resolve_feature__enterprise__unlimited_members_with_no_value() -> None:
    answer = resolve_feature(MAX_MEMBERS, customer(enterprise()), SEGMENTS, NOW)

    assert (answer.enabled, answer.value, answer.unlimited) == (True, None, True)


def test_resolve_feature__standard_streamer_given_4k_for_event_weekend__on_until_override_end_then_off() -> (
    None
):
    friday, monday = NOW + 4 * DAY, NOW + 7 * DAY
    weekend = override(42, "4k-streaming", since=friday, until=monday)
    viewer = customer(standard(overrides=(weekend,)))

    before = resolve_feature(K4, viewer, SEGMENTS, NOW)
    during = resolve_feature(K4, viewer, SEGMENTS, friday + HOUR)
    after = resolve_feature(K4, viewer, SEGMENTS, monday)

    assert (before.enabled, before.source, before.valid_until) == (False, "default", friday)
    assert (during.enabled, during.value, during.source) == (True, True, "override:42")
    assert during.valid_until == monday
    assert (after.enabled, after.value, after.source, after.valid_until) == (
        False,
        False,
        "default",
        None,
    )


# --- resolve_entitlements -------------------------------------------------------------------------


def test_resolve_entitlements__several_features__answers_by_key_and_earliest_valid_until() -> None:
    state = customer(
        business(id=1, overrides=(override(7, "max-members", "grant", 40, until=NOW + 2 * DAY),)),
        premium(id=2, status="trialing", trial_ends_at=NOW + DAY),
    )

    resolution = resolve_entitlements([MAX_MEMBERS, K4, SUPPORT], state, SEGMENTS, NOW)

    assert {key: summary(answer) for key, answer in resolution.answers.items()} == {
        "max-members": (True, 40, False, "override:7"),
        "4k-streaming": (True, True, False, "plan:streaming-premium"),
        "support-level": (False, None, False, "default"),
    }
    assert resolution.answers["max-members"].valid_until == NOW + 2 * DAY
    assert resolution.answers["4k-streaming"].valid_until == NOW + DAY
    assert resolution.valid_until == NOW + DAY


def test_resolve_entitlements__nothing_ends__valid_until_none() -> None:
    resolution = resolve_entitlements([MAX_MEMBERS, K4], customer(business()), SEGMENTS, NOW)

    assert resolution.valid_until is None
    assert [answer.fallback for answer in resolution.answers.values()] == ["deny", "deny"]


def test_resolve_entitlements__same_inputs__same_answers_as_resolve_feature() -> None:
    state = customer(
        business(
            id=1,
            addons=(extra_seats(2),),
            overrides=(override(1, "support-level", "grant", "email", until=NOW + DAY),),
        ),
        premium(id=2, status="past_due", past_due_since=NOW - 2 * DAY),
    )
    features = [MAX_MEMBERS, K4, STREAMS, SUPPORT, EXPORT, CHANGE_REQUEST, CHANGE_REQUEST_VERSION]

    resolution = resolve_entitlements(features, state, SEGMENTS, NOW)

    assert dict(resolution.answers) == {
        spec.key: resolve_feature(spec, state, SEGMENTS, NOW) for spec in features
    }


# --- contributions: the parts of an answer made of plans and add-ons -----------------------------


def parts(answer: Answer) -> list[tuple[str, int, object, object]]:
    return [(c.source, c.units, c.per_unit, c.amount) for c in answer.contributions]


CONTRIBUTIONS = [
    pytest.param(
        MAX_MEMBERS,
        customer(business(addons=(extra_seats(3),))),
        40,
        [("plan:business", 1, 25, 25), ("addon:extra-seats", 3, 5, 15)],
        id="plan-and-three-extra-seats",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(addons=(extra_seats(6),))),
        55,
        [("addon:extra-seats", 6, 5, 30), ("plan:business", 1, 25, 25)],
        id="add-on-larger-than-plan-first",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(id=1, addons=(extra_seats(1),)), business(id=2, addons=(extra_seats(2),))),
        65,
        [("plan:business", 2, 25, 50), ("addon:extra-seats", 3, 5, 15)],
        id="same-plan-and-add-on-on-two-subscriptions-counted-together",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(enterprise(addons=(extra_seats(2),))),
        None,
        [("plan:enterprise", 1, UNLIMITED, UNLIMITED), ("addon:extra-seats", 2, 5, 10)],
        id="unlimited-plan-wins-add-on-still-listed",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business()),
        25,
        [("plan:business", 1, 25, 25)],
        id="plan-alone-one-part",
    ),
    pytest.param(
        SUPPORT,
        customer(
            sub(
                "basic",
                grant("support-level", "email"),
                addons=(addon("chat", 2, grant("support-level", "email+chat")),),
            )
        ),
        "email+chat",
        [("addon:chat", 2, "email+chat", "email+chat"), ("plan:basic", 1, "email", "email")],
        id="custom-highest-level-first",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(addons=(extra_seats(3),), overrides=(override(7, "max-members", "grant", 40),))),
        40,
        [],
        id="override-has-no-parts",
    ),
    pytest.param(
        MAX_MEMBERS,
        customer(business(status="canceled", addons=(extra_seats(3),))),
        0,
        [],
        id="nothing-live-no-parts",
    ),
]


@pytest.mark.parametrize(("spec", "state", "value", "expected"), CONTRIBUTIONS)
def test_resolve_feature__plans_and_add_ons__contributions_list_each_part_largest_first(
    spec: FeatureSpec, state: CustomerState, value: object, expected: list[tuple[str, int, object, object]]
) -> None:
    answer = resolve_feature(spec, state, SEGMENTS, NOW)

    assert answer.value == value
    assert parts(answer) == expected
    if expected:
        assert answer.source == expected[0][0]


def test_resolve_feature__add_on_on_a_trial_ending__parts_change_but_answer_still_holds() -> None:
    # The parts explain the value; the same value from the same source still holds.
    state = customer(
        business(id=1, addons=(extra_seats(1),)),
        business(id=2, status="trialing", trial_ends_at=NOW + DAY),
    )

    answer = resolve_feature(MAX_MEMBERS, state, SEGMENTS, NOW)
    later = resolve_feature(MAX_MEMBERS, state, SEGMENTS, NOW + DAY)

    assert (answer.value, answer.source) == (55, "plan:business")
    assert (later.value, later.source) == (30, "plan:business")
    assert answer.valid_until == NOW + DAY
    assert later.contributions == (
        Contribution(source="plan:business", units=1, per_unit=25, amount=25),
        Contribution(source="addon:extra-seats", units=1, per_unit=5, amount=5),
    )


def test_resolve_feature__negotiated_grant_starting_later__answer_holds_until_it_starts() -> None:
    # 40 seats (not a level of max-members) negotiated from tomorrow: today's answer is the
    # plan's, and it says it holds only until the grant starts.
    state = customer(business(overrides=(override(7, "max-members", "grant", 40, since=NOW + DAY),)))

    today = resolve_feature(MAX_MEMBERS, state, SEGMENTS, NOW)
    tomorrow = resolve_feature(MAX_MEMBERS, state, SEGMENTS, NOW + DAY)

    assert summary(today) == (True, 25, False, "plan:business")
    assert today.valid_until == NOW + DAY
    assert summary(tomorrow) == (True, 40, False, "override:7")
