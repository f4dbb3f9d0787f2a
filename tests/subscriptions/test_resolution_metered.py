"""Resolution of metered features, no database: the limit by the usual precedence (add-ons
per unit, unlimited wins, overrides negotiate), top-ups for one period, and the period each
answer belongs to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from subscriptions.resolution import (
    METERED,
    AddonSpec,
    CustomerState,
    FeatureSpec,
    ItemGrant,
    OverrideSpec,
    SubscriptionSpec,
    TopUpSpec,
    resolve_feature,
)

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
MONTH_START, NEXT_MONTH = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def calls(
    anchor: str = "calendar", limit_type: str = "hard", markets: frozenset = frozenset()
) -> FeatureSpec:
    return FeatureSpec(
        key="api-calls",
        kind=METERED,
        levels=(),
        archived=False,
        markets=markets,
        keep_when_delinquent=False,
        fallback="allow",
        period="month",
        period_anchor=anchor,
        limit_type=limit_type,
    )


def customer(*subscriptions: SubscriptionSpec, topups=(), country: str = "DE") -> CustomerState:
    return CustomerState(
        external_id="c", country=country, traits={}, subscriptions=subscriptions, topups=topups
    )


def subscription(
    limit: object = 1000, *, id: int = 1, addons=(), overrides=(), cycle_end=None, status="active"
):
    return SubscriptionSpec(
        id=id,
        plan_key="basic",
        plan_rank=10,
        grace_days=0,
        status=status,
        trial_ends_at=None,
        past_due_since=None,
        plan_grants=(ItemGrant("api-calls", limit),) if limit is not None else (),
        addons=addons,
        overrides=overrides,
        current_period_end=cycle_end,
    )


def pack(quantity: int, limit: object = 500) -> AddonSpec:
    return AddonSpec(key="api-pack", quantity=quantity, grants=(ItemGrant("api-calls", limit),))


def test_the_plan_gives_the_limit_for_the_calendar_month_valid_until_it_ends():
    answer = resolve_feature(calls(), customer(subscription(1000)), {}, NOW)

    assert (answer.enabled, answer.value, answer.source, answer.granted, answer.hard) == (
        True,
        1000,
        "plan:basic",
        True,
        True,
    )
    assert (answer.period_start, answer.resets_at, answer.valid_until) == (
        MONTH_START,
        NEXT_MONTH,
        NEXT_MONTH,
    )


def test_add_ons_add_their_limit_per_unit_and_unlimited_wins():
    summed = resolve_feature(calls(), customer(subscription(1000, addons=(pack(3),))), {}, NOW)
    unlimited = resolve_feature(
        calls(), customer(subscription(1000, addons=(pack(1, "unlimited"),))), {}, NOW
    )

    assert (summed.value, [c.amount for c in summed.contributions]) == (2500, [1500, 1000])
    assert (unlimited.unlimited, unlimited.enabled, unlimited.value) == (True, True, None)


def test_a_limit_of_zero_is_granted_but_not_enabled():
    answer = resolve_feature(calls(), customer(subscription(0)), {}, NOW)

    assert (answer.enabled, answer.value, answer.granted) == (False, 0, True)


def test_a_top_up_raises_this_periods_limit_only():
    topups = (
        TopUpSpec("api-calls", MONTH_START, 250),
        TopUpSpec("api-calls", MONTH_START - timedelta(days=30), 9000),  # November's
        TopUpSpec("other", MONTH_START, 9000),
    )

    answer = resolve_feature(calls(), customer(subscription(1000), topups=topups), {}, NOW)
    next_month = resolve_feature(calls(), customer(subscription(1000), topups=topups), {}, NEXT_MONTH)

    assert answer.value == 1250
    assert [(c.source, c.amount) for c in answer.contributions] == [("plan:basic", 1000), ("topup", 250)]
    assert next_month.value == 1000


def test_a_top_up_gives_nothing_to_a_customer_without_the_feature_or_after_a_revoke():
    topups = (TopUpSpec("api-calls", MONTH_START, 250),)
    revoke = OverrideSpec(
        id=7, feature_key="api-calls", effect="revoke", value=None, valid_from=None, valid_until=None
    )

    without = resolve_feature(calls(), customer(subscription(None), topups=topups), {}, NOW)
    revoked = resolve_feature(
        calls(), customer(subscription(1000, overrides=(revoke,)), topups=topups), {}, NOW
    )
    abroad = resolve_feature(
        calls(markets=frozenset({"US"})), customer(subscription(1000), topups=topups), {}, NOW
    )

    assert [(a.enabled, a.value, a.granted) for a in (without, revoked, abroad)] == [(False, 0, False)] * 3
    assert [a.source for a in (without, revoked, abroad)] == ["default", "override:7", "market"]


def test_an_override_grant_negotiates_a_limit_and_a_top_up_adds_to_it():
    grant = OverrideSpec(
        id=3, feature_key="api-calls", effect="grant", value=50_000, valid_from=None, valid_until=None
    )
    topups = (TopUpSpec("api-calls", MONTH_START, 5),)

    answer = resolve_feature(
        calls(), customer(subscription(1000, overrides=(grant,)), topups=topups), {}, NOW
    )

    assert (answer.value, answer.source, answer.granted) == (50_005, "override:3", True)


def test_billing_cycle__the_first_counting_subscription_with_a_cycle_anchors_the_period():
    canceled = subscription(None, id=1, status="canceled", cycle_end=datetime(2026, 12, 9, tzinfo=UTC))
    no_cycle = subscription(None, id=2)
    anchored = subscription(1000, id=3, cycle_end=datetime(2026, 12, 20, 8, tzinfo=UTC))

    answer = resolve_feature(calls("billing_cycle"), customer(canceled, no_cycle, anchored), {}, NOW)
    calendar = resolve_feature(calls("billing_cycle"), customer(no_cycle, subscription(1000, id=4)), {}, NOW)

    assert (answer.period_start, answer.resets_at) == (
        datetime(2026, 11, 20, 8, tzinfo=UTC),
        datetime(2026, 12, 20, 8, tzinfo=UTC),
    )
    assert (calendar.period_start, calendar.resets_at) == (MONTH_START, NEXT_MONTH)


def test_an_override_ending_before_the_period_ends_bounds_the_answer():
    ends = NOW + timedelta(days=2)
    grant = OverrideSpec(
        id=3, feature_key="api-calls", effect="grant", value=5, valid_from=None, valid_until=ends
    )

    answer = resolve_feature(calls(), customer(subscription(1000, overrides=(grant,))), {}, NOW)

    assert (answer.value, answer.valid_until, answer.resets_at) == (5, ends, NEXT_MONTH)
