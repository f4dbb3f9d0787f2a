"""Segment membership, decided from plain facts about one customer at one instant.

Pure: no Django, no database, no clock. A selector loads the rows and a mapper turns them into
`SegmentSpec` and `CustomerFacts`; the rules of docs/domain.md (segments) are written here once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeGuard

PLAN, PLAN_RANK, STATUS, COUNTRY = "plan", "plan_rank", "status", "country"
TRAIT_PREFIX = "traits."
ATTRIBUTES = (COUNTRY, PLAN, PLAN_RANK, STATUS)

EQ, NEQ, IN, NOT_IN, GTE, LTE, CONTAINS = "eq", "neq", "in", "not_in", "gte", "lte", "contains"
OPS = (EQ, NEQ, IN, NOT_IN, GTE, LTE, CONTAINS)

# The statuses a `status` condition may name: the subscription statuses (docs/domain.md). A trial
# that has ended reads as "expired" even before billing says so (see resolution.py).
SUBSCRIPTION_STATUSES = ("trialing", "active", "past_due", "paused", "canceled", "expired")


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    """One test on one attribute of a customer, e.g. `plan_rank gte 10`."""

    attribute: str
    op: str
    value: object


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A conjunction: the rule matches when every one of its conditions holds."""

    conditions: tuple[ConditionSpec, ...]


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """A group of customers: explicit lists of external ids, and rules (any one suffices)."""

    key: str
    included: frozenset[str]
    excluded: frozenset[str]
    rules: tuple[RuleSpec, ...]


@dataclass(frozen=True, slots=True)
class LivePlan:
    """The plan of one of the customer's live subscriptions."""

    key: str
    rank: int


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What segment rules may look at: one customer, at the instant considered."""

    external_id: str
    country: str
    traits: Mapping[str, object]
    live_plans: tuple[LivePlan, ...]  # plans of the customer's live subscriptions at the instant
    statuses: frozenset[str]  # effective statuses of all its subscriptions at that instant


def segment_holds(segment: SegmentSpec, facts: CustomerFacts) -> bool:
    """A customer is in the segment when included, or when not excluded and any rule matches.

    Inclusion wins over exclusion: naming a customer in `included` is the most explicit choice.
    """
    if facts.external_id in segment.included:
        return True
    if facts.external_id in segment.excluded:
        return False
    return any(rule_matches(rule, facts) for rule in segment.rules)


def rule_matches(rule: RuleSpec, facts: CustomerFacts) -> bool:
    """A rule matches when all its conditions hold, and a rule without conditions matches nobody.

    `all(())` is true, so an empty rule would silently put every customer in the segment.
    """
    return bool(rule.conditions) and all(condition_holds(c, facts) for c in rule.conditions)


def condition_holds(condition: ConditionSpec, facts: CustomerFacts) -> bool:
    """The op holds for at least one of the customer's values of the attribute (any live plan, any
    status); a customer without the attribute fails every op, `neq` and `not_in` included.
    Odd data (an unknown op, a value of the wrong shape) never raises: the condition is false.
    """
    test = _TESTS.get(condition.op)
    if test is None:
        return False
    actuals = _attribute_values(condition.attribute, facts)
    expected = condition.value
    if condition.attribute == COUNTRY:
        # Codes are stored upper case, but a hand-written "de" means the same country.
        actuals = tuple(_upper(actual) for actual in actuals)
        expected = _upper(expected)
    return any(test(actual, expected) for actual in actuals)


def validate_condition(attribute: str, op: str, value: object) -> None:
    """Refuse, with a sentence a person can act on, a condition that could never mean anything:
    an unknown attribute or op, or a value of the wrong shape for them.
    """
    if attribute.startswith(TRAIT_PREFIX):
        if not attribute[len(TRAIT_PREFIX) :].strip():
            raise ValueError('Name the trait after "traits.", for example "traits.industry".')
    elif attribute not in ATTRIBUTES:
        raise ValueError(
            f'"{attribute}" is not an attribute a condition can test; use one of '
            f"{', '.join(ATTRIBUTES)} or traits.<name>."
        )
    if op not in OPS:
        raise ValueError(f'"{op}" is not an operator; use one of {", ".join(OPS)}.')

    if op in (GTE, LTE):
        if attribute in (COUNTRY, PLAN, STATUS):
            raise ValueError(f'"{op}" compares numbers, and {attribute} is not a number.')
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f'"{op}" needs a number, for example 10.')
        return
    if op == CONTAINS and attribute == PLAN_RANK:
        raise ValueError('"contains" looks inside texts and lists, and plan_rank is a number.')

    if op in (IN, NOT_IN):
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(f'"{op}" needs a non-empty list of values, for example ["DE", "FR"].')
        for item in value:
            _validate_single(attribute, op, item)
    else:
        _validate_single(attribute, op, value)


def _validate_single(attribute: str, op: str, value: object) -> None:
    """Refuse one compared value that cannot match the attribute's kind of data."""
    if attribute == COUNTRY:
        if not (isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha()):
            raise ValueError(f"Countries are two-letter ISO 3166 codes, such as DE; {value!r} is not one.")
    elif attribute == PLAN:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"A plan is named by its key, such as business; {value!r} is not one.")
    elif attribute == PLAN_RANK:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"A plan rank is a whole number, such as 10; {value!r} is not one.")
    elif attribute == STATUS:
        if value not in SUBSCRIPTION_STATUSES:
            raise ValueError(
                f"{value!r} is not a subscription status; use one of {', '.join(SUBSCRIPTION_STATUSES)}."
            )
    elif not _is_scalar(value) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(
            f'"{op}" on a trait needs a single text, number or true/false; {value!r} is not one.'
        )
    if op == CONTAINS and isinstance(value, str) and not value:
        raise ValueError('"contains" needs some text to look for.')


def _attribute_values(attribute: str, facts: CustomerFacts) -> tuple[object, ...]:
    """The customer's values of the attribute; empty when it does not have it."""
    if attribute == COUNTRY:
        return (facts.country,) if isinstance(facts.country, str) and facts.country else ()
    if attribute == PLAN:
        return tuple(plan.key for plan in facts.live_plans)
    if attribute == PLAN_RANK:
        return tuple(plan.rank for plan in facts.live_plans)
    if attribute == STATUS:
        return tuple(facts.statuses)
    if attribute.startswith(TRAIT_PREFIX) and isinstance(facts.traits, Mapping):
        name = attribute[len(TRAIT_PREFIX) :]
        # Trait names are flat keys ("traits.a.b" reads the key "a.b"), and a null trait is
        # treated as absent, so `neq`/`not_in` do not match customers who never set it.
        trait = facts.traits.get(name) if name else None
        return () if trait is None else (trait,)
    return ()


def _is_number(value: object) -> TypeGuard[int | float]:
    # bool is an int subclass, but True is a yes, not a 1.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float)


def _same(actual: object, expected: object) -> bool:
    """Equality without Python's True == 1: a boolean only equals a boolean."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if _is_number(actual) and _is_number(expected):
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def _upper(value: object) -> object:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list | tuple):
        return tuple(item.upper() if isinstance(item, str) else item for item in value)
    return value


def _eq(actual: object, expected: object) -> bool:
    return _is_scalar(expected) and _same(actual, expected)


def _neq(actual: object, expected: object) -> bool:
    return _is_scalar(expected) and not _same(actual, expected)


def _in(actual: object, expected: object) -> bool:
    return isinstance(expected, list | tuple) and any(_same(actual, item) for item in expected)


def _not_in(actual: object, expected: object) -> bool:
    return isinstance(expected, list | tuple) and not any(_same(actual, i) for i in expected)


def _gte(actual: object, expected: object) -> bool:
    return _is_number(actual) and _is_number(expected) and actual >= expected


def _lte(actual: object, expected: object) -> bool:
    return _is_number(actual) and _is_number(expected) and actual <= expected


def _contains(actual: object, expected: object) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list | tuple):
        return _is_scalar(expected) and any(_same(item, expected) for item in actual)
    return False


_TESTS: Mapping[str, Callable[[object, object], bool]] = {
    EQ: _eq,
    NEQ: _neq,
    IN: _in,
    NOT_IN: _not_in,
    GTE: _gte,
    LTE: _lte,
    CONTAINS: _contains,
}
