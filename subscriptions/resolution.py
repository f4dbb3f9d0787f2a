"""What a customer has now (docs/domain.md, resolution), written once, as a pure function of
data and an instant.

No Django, no database, no clock of its own: a selector loads the rows, a mapper turns them into
these frozen dataclasses, and the caller passes the time. Every answer says how long it holds
(`valid_until`), computed by evaluating the same rules at each instant where an input changes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from segments.matching import CustomerFacts, LivePlan, SegmentSpec, segment_holds
from toolkit.periods import current_period

SWITCH, QUANTITY, RANGE, CUSTOM, METERED = "switch", "quantity", "range", "custom", "metered"
KINDS = (SWITCH, QUANTITY, RANGE, CUSTOM, METERED)
NUMBERS = (QUANTITY, RANGE, METERED)  # kinds whose values add up
HARD = "hard"
UNLIMITED = "unlimited"

GRANT, REVOKE = "grant", "revoke"
TRIALING, ACTIVE, PAST_DUE, EXPIRED = "trialing", "active", "past_due", "expired"
LIVE, DELINQUENT, DEAD = "live", "delinquent", "dead"

SOURCE_ARCHIVED, SOURCE_MARKET, SOURCE_DEFAULT = "archived", "market", "default"


@dataclass(frozen=True, slots=True)
class TargetingRuleSpec:
    """One line of a feature's ordered targeting: customers in the segment get the value."""

    segment_key: str
    value: object


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """A feature as resolution needs it: its kind, levels, geography and targeting."""

    key: str
    kind: str
    levels: tuple[object, ...]  # quantity: ints; custom: ordered texts (later = higher)
    archived: bool
    markets: frozenset[str]  # ISO 3166 codes; empty = everywhere
    keep_when_delinquent: bool
    fallback: str
    rules: tuple[TargetingRuleSpec, ...] = ()  # in order
    # Metered features only (toolkit.periods): "day"…"year", "calendar" or "billing_cycle",
    # "hard" or "soft".
    period: str = ""
    period_anchor: str = ""
    limit_type: str = ""


@dataclass(frozen=True, slots=True)
class ItemGrant:
    """An entitlement of a plan or add-on: True for switch, an int or "unlimited" for quantity,
    an int for range, a level text for custom."""

    feature_key: str
    value: object


@dataclass(frozen=True, slots=True)
class AddonSpec:
    """An add-on on a subscription, bought `quantity` times."""

    key: str
    quantity: int
    grants: tuple[ItemGrant, ...]


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    """A human decision on one subscription and one feature: "grant" (with a value) or "revoke",
    live on [valid_from, valid_until); None leaves that end open."""

    id: int
    feature_key: str
    effect: str
    value: object
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """One subscription with what its plan, add-ons and overrides say."""

    id: int
    plan_key: str
    plan_rank: int
    grace_days: int
    status: str
    trial_ends_at: datetime | None
    past_due_since: datetime | None
    plan_grants: tuple[ItemGrant, ...]
    addons: tuple[AddonSpec, ...] = ()
    overrides: tuple[OverrideSpec, ...] = ()
    current_period_end: datetime | None = None  # the billing cycle's anchor


@dataclass(frozen=True, slots=True)
class TopUpSpec:
    """A one-off addition to a metered feature's limit for the period starting `period_start`."""

    feature_key: str
    period_start: datetime
    amount: int


@dataclass(frozen=True, slots=True)
class CustomerState:
    """Everything about one customer that resolution reads."""

    external_id: str
    country: str
    traits: Mapping[str, object]
    subscriptions: tuple[SubscriptionSpec, ...]
    topups: tuple[TopUpSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Contribution:
    """One plan's or add-on's part of an answer made of plans and add-ons: `units` of
    `per_unit` each (an add-on's quantity, summed over the subscriptions holding it; a plan
    counts once per subscription), `amount` in all (for a switch or a level: the value)."""

    source: str  # "plan:<key>", "addon:<key>", or "topup" (a metered limit's top-ups)
    units: int
    per_unit: object
    amount: object


@dataclass(frozen=True, slots=True)
class Answer:
    """What one customer has of one feature, why (`source`), and until when it holds. An
    answer from plans and add-ons lists their parts in `contributions` (largest first, the
    source's first); any other answer has none."""

    feature_key: str
    kind: str
    enabled: bool
    value: object
    unlimited: bool
    source: str
    valid_until: datetime | None
    fallback: str
    # Explains the value, is not part of it: an answer whose parts change while its value and
    # source stay the same still holds (the API's valid_until does not move for it).
    contributions: tuple[Contribution, ...] = field(default=(), compare=False)
    # Metered features: the usage period holding the answer's instant, and the limit's kind.
    period_start: datetime | None = None
    resets_at: datetime | None = None
    hard: bool = False
    granted: bool = False  # a plan, add-on, segment or override grant gives it (even a limit of 0)


@dataclass(frozen=True, slots=True)
class Resolution:
    """All answers for one customer; `valid_until` is the earliest instant any of them changes."""

    answers: Mapping[str, Answer]
    valid_until: datetime | None


def resolve_entitlements(
    features: Sequence[FeatureSpec],
    customer: CustomerState,
    segments: Mapping[str, SegmentSpec],
    now: datetime,
) -> Resolution:
    """Resolve every feature for one customer at `now`; the whole holds until the first answer
    changes by itself."""
    timeline = _Timeline(customer, segments, now)
    answers = {feature.key: _answer_over(feature, timeline) for feature in features}
    ends = [answer.valid_until for answer in answers.values() if answer.valid_until is not None]
    return Resolution(answers=MappingProxyType(answers), valid_until=min(ends, default=None))


def resolve_feature(
    feature: FeatureSpec,
    customer: CustomerState,
    segments: Mapping[str, SegmentSpec],
    now: datetime,
) -> Answer:
    """The first rule of the precedence that applies decides; the answer is exactly constant on
    [now, valid_until), and differs at valid_until (None: it never changes by itself)."""
    return _answer_over(feature, _Timeline(customer, segments, now))


def subscription_phase(sub: SubscriptionSpec, at: datetime) -> str:
    """A subscription is "live" while trialing before `trial_ends_at`, active, or past_due within
    `grace_days` of `past_due_since` (unknown: within); "delinquent" past that; else "dead"."""
    if sub.status == ACTIVE:
        return LIVE
    if sub.status == TRIALING:
        return LIVE if sub.trial_ends_at is None or at < sub.trial_ends_at else DEAD
    if sub.status == PAST_DUE:
        grace_end = _grace_end(sub)
        return LIVE if grace_end is None or at < grace_end else DELINQUENT
    # paused, canceled, expired, and any status this code does not know, give nothing.
    return DEAD


def customer_facts(customer: CustomerState, at: datetime) -> CustomerFacts:
    """What segment rules see at `at`: the plans of live and delinquent subscriptions (still the
    customer's plans), and every subscription's effective status (an ended trial reads "expired")."""
    live_plans = {
        LivePlan(key=sub.plan_key, rank=sub.plan_rank)
        for sub in customer.subscriptions
        if subscription_phase(sub, at) != DEAD
    }
    return CustomerFacts(
        external_id=customer.external_id,
        country=customer.country,
        traits=customer.traits,
        live_plans=tuple(sorted(live_plans, key=lambda plan: (plan.key, plan.rank))),
        statuses=frozenset(_effective_status(sub, at) for sub in customer.subscriptions),
    )


def boundaries(customer: CustomerState, after: datetime) -> list[datetime]:
    """The sorted instants after `after` at which some answer may change: override starts and
    ends, trial ends and grace ends. Between two of them every input to resolution is constant."""
    instants: set[datetime] = set()
    for sub in customer.subscriptions:
        if sub.status == TRIALING and sub.trial_ends_at is not None:
            instants.add(sub.trial_ends_at)
        if sub.status == PAST_DUE and (grace_end := _grace_end(sub)) is not None:
            instants.add(grace_end)
        if sub.status in (TRIALING, ACTIVE, PAST_DUE):
            for override in sub.overrides:
                instants.update(t for t in (override.valid_from, override.valid_until) if t is not None)
    return sorted(t for t in instants if t > after)


# --- one instant -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Moment:
    """The customer as seen at one instant, shared by every feature resolved at that instant."""

    at: datetime
    # Subscriptions that still count (phase live or delinquent), with their phase.
    subscriptions: tuple[tuple[SubscriptionSpec, str], ...]
    facts: CustomerFacts
    # Segment membership is asked once per segment, however many features target it.
    memberships: dict[str, bool] = field(default_factory=dict)


def _moment(customer: CustomerState, at: datetime) -> _Moment:
    phases = ((sub, subscription_phase(sub, at)) for sub in customer.subscriptions)
    return _Moment(
        at=at,
        subscriptions=tuple((sub, phase) for sub, phase in phases if phase != DEAD),
        facts=customer_facts(customer, at),
    )


def _decide(
    feature: FeatureSpec,
    customer: CustomerState,
    segments: Mapping[str, SegmentSpec],
    moment: _Moment,
) -> Answer:
    """The precedence at one instant: the first of these rules that applies decides."""
    if feature.archived:
        answer = _off(feature, SOURCE_ARCHIVED)
    elif (markets := {market.upper() for market in feature.markets}) and (
        customer.country or ""
    ).upper() not in markets:
        # Geography is never bypassed: nothing below, not even an override, may reach here.
        answer = _off(feature, SOURCE_MARKET)
    else:
        answer = (
            _from_overrides(feature, moment)
            or _from_targeting(feature, segments, moment)
            or _from_grants(feature, moment)
            or _off(feature, SOURCE_DEFAULT)
        )
    return _metered(feature, answer, customer, moment) if feature.kind == METERED else answer


def _metered(feature: FeatureSpec, answer: Answer, customer: CustomerState, moment: _Moment) -> Answer:
    """A metered answer's period, and its limit raised by this period's top-ups when a plan,
    add-on, segment or override grant gives the feature (a top-up never turns on a feature the
    customer does not have, nor outlives a revoke)."""
    cycle_end = None
    if feature.period_anchor == "billing_cycle":
        # The billing cycle of the customer's first subscription that still counts and names one.
        cycle_end = next(
            (sub.current_period_end for sub, _phase in moment.subscriptions if sub.current_period_end),
            None,
        )
    start, end = current_period(feature.period, moment.at, cycle_end)
    granted = _granted_by(answer, moment)
    answer = dataclasses.replace(
        answer, period_start=start, resets_at=end, hard=feature.limit_type == HARD, granted=granted
    )
    extra = sum(
        topup.amount
        for topup in customer.topups
        if topup.feature_key == feature.key and topup.period_start == start
    )
    if not extra or answer.unlimited or not granted:
        return answer
    limit = answer.value + extra
    parts = (*answer.contributions, Contribution(source="topup", units=1, per_unit=extra, amount=extra))
    return dataclasses.replace(answer, value=limit, enabled=limit > 0, contributions=parts)


def _granted_by(answer: Answer, moment: _Moment) -> bool:
    """Whether `answer` comes from something that gives the feature (not an off answer)."""
    kind, _, name = answer.source.partition(":")
    if kind in ("plan", "addon", "segment"):
        return True
    if kind != "override":
        return False
    return any(
        override.id == int(name) and override.effect == GRANT
        for sub, _phase in moment.subscriptions
        for override in sub.overrides
    )


def _from_overrides(feature: FeatureSpec, moment: _Moment) -> Answer | None:
    """A live revoke turns the feature off (smallest id names it); otherwise the highest live
    grant serves its value (ties: smallest id). Overrides on a delinquent subscription apply too:
    they are explicit, time-boxed decisions by a person, not something the plan gives."""
    live = [
        override
        for sub, _phase in moment.subscriptions
        for override in sub.overrides
        if override.feature_key == feature.key and _override_live(override, moment.at)
    ]
    revokes = [override.id for override in live if override.effect == REVOKE]
    if revokes:
        return _off(feature, f"override:{min(revokes)}")
    best: tuple[tuple[int, int], int, object] | None = None
    for override in live:
        if override.effect != GRANT:
            continue
        strength = _strength(feature, override.value)
        # A value that no longer fits the feature (a level since removed) is ignored.
        if strength is None:
            continue
        if best is None or (strength, -override.id) > (best[0], -best[1]):
            best = (strength, override.id, override.value)
    if best is None:
        return None
    return _on(feature, _granted(feature, best[2]), f"override:{best[1]}")


def _from_targeting(
    feature: FeatureSpec, segments: Mapping[str, SegmentSpec], moment: _Moment
) -> Answer | None:
    """The first targeting rule whose segment holds the customer serves its value; a rule naming
    an unknown segment, or whose value no longer fits the feature, is skipped."""
    for rule in feature.rules:
        segment = segments.get(rule.segment_key)
        if segment is None or not _servable(feature, rule.value):
            continue
        holds = moment.memberships.get(rule.segment_key)
        if holds is None:
            holds = moment.memberships[rule.segment_key] = segment_holds(segment, moment.facts)
        if holds:
            return _on(feature, rule.value, f"segment:{rule.segment_key}")
    return None


def _from_grants(feature: FeatureSpec, moment: _Moment) -> Answer | None:
    """Plan and add-on entitlements of the live subscriptions, combined (switch: any; quantity and
    range: the sum, add-ons once per unit, unlimited wins; custom: the highest level). A
    delinquent subscription gives only features that are keep_when_delinquent. The answer lists
    each plan's and add-on's part."""
    # Keyed by (is_plan, key): a plan or add-on held on several subscriptions is one contributor,
    # as the source can only name it once: its amounts and units add up. Its value per unit is
    # the catalog's, so the same on every subscription; were it not, it is None (mixed).
    amounts: dict[tuple[bool, str], object] = {}
    units: dict[tuple[bool, str], int] = {}
    per_unit: dict[tuple[bool, str], object] = {}

    def contribute(name: tuple[bool, str], value: object, quantity: int) -> None:
        amount = _times(feature, value, quantity)
        if name in amounts:
            amounts[name] = _add(feature, amounts[name], amount)
            units[name] += quantity
            if per_unit[name] != value:
                per_unit[name] = None
        else:
            amounts[name], units[name], per_unit[name] = amount, quantity, value

    for sub, phase in moment.subscriptions:
        if phase == DELINQUENT and not feature.keep_when_delinquent:
            continue
        for grant in sub.plan_grants:
            if grant.feature_key == feature.key and _strength(feature, grant.value) is not None:
                contribute((True, sub.plan_key), _granted(feature, grant.value), 1)
        for addon in sub.addons:
            if addon.quantity <= 0:
                continue
            for grant in addon.grants:
                if grant.feature_key == feature.key and _strength(feature, grant.value) is not None:
                    contribute((False, addon.key), _granted(feature, grant.value), addon.quantity)
    if not amounts:
        return None

    # The largest contribution names the source; the plan on a tie, then the smaller key, so
    # the order of subscriptions and add-ons never matters.
    ranked = sorted(
        sorted(amounts, key=lambda name: name[1]),
        key=lambda name: (_strength(feature, amounts[name]), name[0]),
        reverse=True,
    )
    total = functools.reduce(functools.partial(_add, feature), amounts.values())
    contributions = tuple(
        Contribution(
            source=_source_of(name), units=units[name], per_unit=per_unit[name], amount=amounts[name]
        )
        for name in ranked
    )
    return _on(feature, total, _source_of(ranked[0]), contributions)


def _source_of(name: tuple[bool, str]) -> str:
    is_plan, key = name
    return f"{'plan' if is_plan else 'addon'}:{key}"


def _times(feature: FeatureSpec, value: object, quantity: int) -> object:
    """An add-on counts once per unit for numbers; a switch or a level is given once."""
    if feature.kind in NUMBERS and isinstance(value, int):
        return value * quantity
    return value


def _add(feature: FeatureSpec, left: object, right: object) -> object:
    """Two fitting values together: the sum for numbers (unlimited wins), else the higher."""
    if feature.kind in NUMBERS:
        if UNLIMITED in (left, right):
            return UNLIMITED
        if isinstance(left, int) and isinstance(right, int):
            return left + right
        return UNLIMITED  # unreachable for fitting values, which are ints or unlimited
    return max(left, right, key=lambda value: _strength(feature, value) or (0, 0))


def _override_live(override: OverrideSpec, at: datetime) -> bool:
    """An override is live on [valid_from, valid_until); an empty end is open."""
    return (override.valid_from is None or override.valid_from <= at) and (
        override.valid_until is None or at < override.valid_until
    )


def _grace_end(sub: SubscriptionSpec) -> datetime | None:
    """When an unpaid subscription stops giving everything; None while the start is unknown."""
    if sub.past_due_since is None:
        return None
    try:
        return sub.past_due_since + timedelta(days=max(sub.grace_days, 0))
    except OverflowError:  # a grace beyond year 9999 never ends
        return None


def _effective_status(sub: SubscriptionSpec, at: datetime) -> str:
    """A trial that has ended is expired, even before the billing system says so."""
    if sub.status == TRIALING and sub.trial_ends_at is not None and at >= sub.trial_ends_at:
        return EXPIRED
    return sub.status


# --- values --------------------------------------------------------------------------------------


def _strength(feature: FeatureSpec, value: object) -> tuple[int, int] | None:
    """How much a granted value gives, comparable within one feature; None when it does not fit.

    A switch grant gives the switch whatever its value (the grant itself is the decision).
    """
    if feature.kind == SWITCH:
        return (0, 1)
    if feature.kind in NUMBERS:
        if value == UNLIMITED:
            return (1, 0)
        if isinstance(value, int) and not isinstance(value, bool):
            return (0, value)
        return None
    if feature.kind == CUSTOM and isinstance(value, str) and value in feature.levels:
        return (0, feature.levels.index(value))
    return None


def _granted(feature: FeatureSpec, value: object) -> object:
    """What a grant gives: a switch grant turns the switch on whatever value it carries."""
    return True if feature.kind == SWITCH else value


def _servable(feature: FeatureSpec, value: object) -> bool:
    """A targeting rule may serve any value that fits the feature, and also "off" (False, 0 or
    None), so a segment can withhold what plans would give."""
    if feature.kind == SWITCH:
        return isinstance(value, bool)
    if feature.kind == CUSTOM and value is None:
        return True
    return _strength(feature, value) is not None


def _on(
    feature: FeatureSpec, value: object, source: str, contributions: tuple[Contribution, ...] = ()
) -> Answer:
    """An answer serving `value`; `enabled` follows the value (False, 0 and None are off)."""
    parts = contributions
    if feature.kind == SWITCH:
        return _answer(feature, enabled=value is True, value=value is True, source=source, parts=parts)
    if feature.kind in NUMBERS:
        if value == UNLIMITED:
            return _answer(feature, enabled=True, value=None, source=source, unlimited=True, parts=parts)
        number = value if isinstance(value, int) else 0
        return _answer(feature, enabled=number > 0, value=number, source=source, parts=parts)
    return _answer(feature, enabled=value is not None, value=value, source=source, parts=parts)


def _off(feature: FeatureSpec, source: str) -> Answer:
    """Off: False for switch, 0 for quantity and range, None for custom."""
    value: object = {SWITCH: False, QUANTITY: 0, RANGE: 0, METERED: 0}.get(feature.kind)
    return _answer(feature, enabled=False, value=value, source=source)


def _answer(
    feature: FeatureSpec,
    *,
    enabled: bool,
    value: object,
    source: str,
    unlimited: bool = False,
    parts: tuple[Contribution, ...] = (),
) -> Answer:
    return Answer(
        feature_key=feature.key,
        kind=feature.kind,
        enabled=enabled,
        value=value,
        unlimited=unlimited,
        source=source,
        valid_until=None,
        fallback=feature.fallback,
        contributions=parts,
    )


# --- over time -----------------------------------------------------------------------------------


class _Timeline:
    """The customer at `now` and at each later boundary, each instant built once and only when a
    feature first needs to look that far."""

    __slots__ = ("_instants", "_moments", "customer", "segments")

    def __init__(self, customer: CustomerState, segments: Mapping[str, SegmentSpec], now: datetime) -> None:
        self.customer = customer
        self.segments = segments
        self._instants = [now, *boundaries(customer, now)]
        self._moments: list[_Moment] = []

    def __iter__(self) -> Iterator[_Moment]:
        for index, at in enumerate(self._instants):
            if index == len(self._moments):
                self._moments.append(_moment(self.customer, at))
            yield self._moments[index]


def _answer_over(feature: FeatureSpec, timeline: _Timeline) -> Answer:
    """The answer at now, valid until the first boundary at which the answer differs."""
    moments = iter(timeline)
    current = _decide(feature, timeline.customer, timeline.segments, next(moments))
    for moment in moments:
        if current.resets_at is not None and moment.at >= current.resets_at:
            break  # a metered answer holds until its period ends, at the latest
        if _decide(feature, timeline.customer, timeline.segments, moment) != current:
            return dataclasses.replace(current, valid_until=moment.at)
    return dataclasses.replace(current, valid_until=current.resets_at) if current.resets_at else current
