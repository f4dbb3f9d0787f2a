"""Segment membership (docs/domain.md, segments), table-driven, no database."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from segments.matching import (
    COUNTRY,
    OPS,
    PLAN,
    PLAN_RANK,
    STATUS,
    ConditionSpec,
    CustomerFacts,
    LivePlan,
    RuleSpec,
    SegmentSpec,
    condition_holds,
    segment_holds,
    validate_condition,
)


def facts(
    *,
    external_id: str = "acme",
    country: str = "DE",
    traits: Mapping[str, object] | None = None,
    plans: tuple[tuple[str, int], ...] = (("business", 20),),
    statuses: tuple[str, ...] = ("active",),
) -> CustomerFacts:
    return CustomerFacts(
        external_id=external_id,
        country=country,
        traits=traits or {},
        live_plans=tuple(LivePlan(key, rank) for key, rank in plans),
        statuses=frozenset(statuses),
    )


def cond(attribute: str, op: str, value: object) -> ConditionSpec:
    return ConditionSpec(attribute, op, value)


def segment(
    *rules: tuple[ConditionSpec, ...],
    included: tuple[str, ...] = (),
    excluded: tuple[str, ...] = (),
) -> SegmentSpec:
    return SegmentSpec(
        key="beta",
        included=frozenset(included),
        excluded=frozenset(excluded),
        rules=tuple(RuleSpec(conditions) for conditions in rules),
    )


NO_PLAN = facts(plans=(), statuses=())
TRAITS = facts(
    traits={
        "industry": "media",
        "seats": 40,
        "ratio": 0.5,
        "beta": True,
        "tags": ["early", "vip", 3],
        "notes": None,
        "nested": {"a": 1},
    }
)

CONDITIONS = [
    # country, compared case-insensitively
    pytest.param(cond(COUNTRY, "eq", "DE"), facts(), True, id="country-eq-same"),
    pytest.param(cond(COUNTRY, "eq", "de"), facts(), True, id="country-eq-lower-case-value"),
    pytest.param(cond(COUNTRY, "eq", "DE"), facts(country="de"), True, id="country-eq-lower-data"),
    pytest.param(cond(COUNTRY, "eq", "FR"), facts(), False, id="country-eq-other"),
    pytest.param(cond(COUNTRY, "neq", "FR"), facts(), True, id="country-neq-other"),
    pytest.param(cond(COUNTRY, "neq", "de"), facts(), False, id="country-neq-same"),
    pytest.param(cond(COUNTRY, "in", ["fr", "de"]), facts(), True, id="country-in-listed"),
    pytest.param(cond(COUNTRY, "in", ["FR", "IT"]), facts(), False, id="country-in-unlisted"),
    pytest.param(cond(COUNTRY, "not_in", ["FR"]), facts(), True, id="country-not-in-unlisted"),
    pytest.param(cond(COUNTRY, "not_in", ["de"]), facts(), False, id="country-not-in-listed"),
    pytest.param(cond(COUNTRY, "contains", "e"), facts(), True, id="country-contains-letter"),
    pytest.param(cond(COUNTRY, "gte", 1), facts(), False, id="country-gte-not-a-number"),
    # a customer with no country has no value to compare, whatever the op
    pytest.param(cond(COUNTRY, "eq", ""), facts(country=""), False, id="no-country-eq-empty"),
    pytest.param(cond(COUNTRY, "neq", "FR"), facts(country=""), False, id="no-country-neq"),
    pytest.param(cond(COUNTRY, "not_in", ["FR"]), facts(country=""), False, id="no-country-not-in"),
    # plan: any live plan
    pytest.param(cond(PLAN, "eq", "business"), facts(), True, id="plan-eq-same"),
    pytest.param(cond(PLAN, "eq", "starter"), facts(), False, id="plan-eq-other"),
    pytest.param(cond(PLAN, "neq", "starter"), facts(), True, id="plan-neq-other"),
    pytest.param(cond(PLAN, "neq", "business"), facts(), False, id="plan-neq-same"),
    pytest.param(cond(PLAN, "in", ["starter", "business"]), facts(), True, id="plan-in-listed"),
    pytest.param(cond(PLAN, "not_in", ["business"]), facts(), False, id="plan-not-in-listed"),
    pytest.param(cond(PLAN, "contains", "busi"), facts(), True, id="plan-contains-substring"),
    pytest.param(cond(PLAN, "contains", "Busi"), facts(), False, id="plan-contains-case-sensitive"),
    pytest.param(
        cond(PLAN, "eq", "streaming-premium"),
        facts(plans=(("business", 20), ("streaming-premium", 40))),
        True,
        id="plan-eq-second-of-two-live-plans",
    ),
    pytest.param(
        cond(PLAN, "neq", "business"),
        facts(plans=(("business", 20), ("streaming-premium", 40))),
        True,
        id="plan-neq-holds-for-the-other-live-plan",
    ),
    pytest.param(
        cond(PLAN, "not_in", ["business", "streaming-premium"]),
        facts(plans=(("business", 20), ("streaming-premium", 40))),
        False,
        id="plan-not-in-every-live-plan-listed",
    ),
    pytest.param(cond(PLAN, "eq", "business"), NO_PLAN, False, id="no-plan-eq"),
    pytest.param(cond(PLAN, "neq", "business"), NO_PLAN, False, id="no-plan-neq"),
    pytest.param(cond(PLAN, "not_in", ["business"]), NO_PLAN, False, id="no-plan-not-in"),
    # plan_rank: any live plan's rank
    pytest.param(cond(PLAN_RANK, "gte", 10), facts(plans=(("basic", 10),)), True, id="rank-gte-equal"),
    pytest.param(cond(PLAN_RANK, "gte", 10), facts(plans=(("free", 0),)), False, id="rank-gte-below"),
    pytest.param(
        cond(PLAN_RANK, "gte", 10),
        facts(plans=(("free", 0), ("advanced", 30))),
        True,
        id="rank-gte-one-of-two-plans-high-enough",
    ),
    pytest.param(cond(PLAN_RANK, "lte", 20), facts(), True, id="rank-lte-equal"),
    pytest.param(cond(PLAN_RANK, "lte", 19.5), facts(), False, id="rank-lte-float-below"),
    pytest.param(cond(PLAN_RANK, "eq", 20), facts(), True, id="rank-eq"),
    pytest.param(cond(PLAN_RANK, "in", [10, 20]), facts(), True, id="rank-in"),
    pytest.param(cond(PLAN_RANK, "gte", "10"), facts(), False, id="rank-gte-text-value"),
    pytest.param(cond(PLAN_RANK, "gte", True), facts(), False, id="rank-gte-bool-value"),
    pytest.param(cond(PLAN_RANK, "lte", 100), NO_PLAN, False, id="no-plan-rank-lte"),
    pytest.param(cond(PLAN_RANK, "neq", 5), NO_PLAN, False, id="no-plan-rank-neq"),
    # status: any subscription's effective status
    pytest.param(cond(STATUS, "eq", "active"), facts(), True, id="status-eq"),
    pytest.param(
        cond(STATUS, "in", ["past_due", "trialing"]),
        facts(statuses=("active", "past_due")),
        True,
        id="status-in-one-of-two",
    ),
    pytest.param(cond(STATUS, "neq", "active"), facts(), False, id="status-neq-only-status"),
    pytest.param(
        cond(STATUS, "neq", "active"),
        facts(statuses=("active", "canceled")),
        True,
        id="status-neq-other-subscription",
    ),
    pytest.param(cond(STATUS, "eq", "active"), NO_PLAN, False, id="no-subscription-status-eq"),
    pytest.param(cond(STATUS, "not_in", ["paused"]), NO_PLAN, False, id="no-subscription-not-in"),
    # traits
    pytest.param(cond("traits.industry", "eq", "media"), TRAITS, True, id="trait-eq"),
    pytest.param(cond("traits.industry", "neq", "retail"), TRAITS, True, id="trait-neq"),
    pytest.param(cond("traits.industry", "in", ["media", "news"]), TRAITS, True, id="trait-in"),
    pytest.param(cond("traits.industry", "not_in", ["retail"]), TRAITS, True, id="trait-not-in"),
    pytest.param(cond("traits.industry", "contains", "edi"), TRAITS, True, id="trait-contains-text"),
    pytest.param(cond("traits.tags", "contains", "vip"), TRAITS, True, id="trait-contains-member"),
    pytest.param(cond("traits.tags", "contains", "vi"), TRAITS, False, id="trait-contains-no-member"),
    pytest.param(cond("traits.tags", "contains", 3), TRAITS, True, id="trait-contains-number"),
    pytest.param(cond("traits.seats", "contains", 4), TRAITS, False, id="trait-contains-on-number"),
    pytest.param(cond("traits.seats", "gte", 40), TRAITS, True, id="trait-gte-equal"),
    pytest.param(cond("traits.seats", "gte", 40.5), TRAITS, False, id="trait-gte-above"),
    pytest.param(cond("traits.ratio", "lte", 1), TRAITS, True, id="trait-lte-float"),
    pytest.param(cond("traits.industry", "gte", 1), TRAITS, False, id="trait-gte-text-trait"),
    pytest.param(cond("traits.beta", "gte", 1), TRAITS, False, id="trait-gte-bool-not-a-number"),
    pytest.param(cond("traits.beta", "eq", 1), TRAITS, False, id="trait-eq-bool-is-not-one"),
    pytest.param(cond("traits.beta", "eq", True), TRAITS, True, id="trait-eq-bool"),
    pytest.param(cond("traits.seats", "eq", 40.0), TRAITS, True, id="trait-eq-int-equals-float"),
    pytest.param(cond("traits.seats", "eq", "40"), TRAITS, False, id="trait-eq-text-is-not-number"),
    pytest.param(cond("traits.missing", "eq", "x"), TRAITS, False, id="missing-trait-eq"),
    pytest.param(cond("traits.missing", "neq", "x"), TRAITS, False, id="missing-trait-neq"),
    pytest.param(cond("traits.missing", "not_in", ["x"]), TRAITS, False, id="missing-trait-not-in"),
    pytest.param(cond("traits.notes", "neq", "x"), TRAITS, False, id="null-trait-counts-as-missing"),
    pytest.param(cond("traits.nested", "eq", "x"), TRAITS, False, id="trait-object-eq"),
    # odd data never raises
    pytest.param(cond("traits.", "eq", "x"), TRAITS, False, id="empty-trait-name"),
    pytest.param(cond("colour", "eq", "red"), facts(), False, id="unknown-attribute"),
    pytest.param(cond(PLAN, "like", "business"), facts(), False, id="unknown-op"),
    pytest.param(cond(PLAN, "in", "business"), facts(), False, id="in-with-text-not-list"),
    pytest.param(cond(PLAN, "not_in", "starter"), facts(), False, id="not-in-with-text-not-list"),
    pytest.param(cond(PLAN, "eq", ["business"]), facts(), False, id="eq-with-list"),
    pytest.param(cond(PLAN, "neq", {"a": 1}), facts(), False, id="neq-with-object"),
    pytest.param(cond("traits.seats", "gte", None), TRAITS, False, id="gte-with-null"),
    pytest.param(cond(COUNTRY, "eq", "DE"), facts(country=None), False, id="null-country"),  # type: ignore[arg-type]
    pytest.param(cond("traits.industry", "eq", "media"), facts(traits=[]), False, id="traits-not-a-mapping"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("condition", "customer", "expected"), CONDITIONS)
def test_condition_holds__attribute_op_and_value__as_in_table(
    condition: ConditionSpec, customer: CustomerFacts, expected: bool
) -> None:
    assert condition_holds(condition, customer) is expected


def test_condition_holds__table__covers_every_op() -> None:
    covered = {param.values[0].op for param in CONDITIONS}  # type: ignore[union-attr]
    assert set(OPS) <= covered


BASIC_OR_HIGHER = segment((cond(PLAN_RANK, "gte", 10),))
DE_BUSINESS = (cond(COUNTRY, "eq", "DE"), cond(PLAN, "eq", "business"))

SEGMENTS = [
    pytest.param(segment(included=("acme",)), facts(), True, id="included-without-rules"),
    pytest.param(segment(included=("other",)), facts(), False, id="someone-else-included"),
    pytest.param(
        segment(included=("acme",), excluded=("acme",)), facts(), True, id="included-beats-excluded"
    ),
    pytest.param(segment(DE_BUSINESS, excluded=("acme",)), facts(), False, id="excluded-beats-rules"),
    pytest.param(segment(DE_BUSINESS, excluded=("other",)), facts(), True, id="someone-else-excluded"),
    pytest.param(segment(DE_BUSINESS), facts(), True, id="all-conditions-hold"),
    pytest.param(segment(DE_BUSINESS), facts(country="FR"), False, id="one-condition-fails"),
    pytest.param(
        segment((cond(COUNTRY, "eq", "FR"),), (cond(PLAN, "eq", "business"),)),
        facts(),
        True,
        id="second-rule-matches",
    ),
    pytest.param(
        segment((cond(COUNTRY, "eq", "FR"),), (cond(PLAN, "eq", "starter"),)),
        facts(),
        False,
        id="no-rule-matches",
    ),
    pytest.param(segment(), facts(), False, id="no-rules-nobody"),
    pytest.param(segment(()), facts(), False, id="empty-rule-matches-nobody"),
    pytest.param(
        segment((), (cond(COUNTRY, "eq", "DE"),)), facts(), True, id="empty-rule-beside-matching-rule"
    ),
    # "Basic subscription or higher" (the demo)
    pytest.param(BASIC_OR_HIGHER, facts(plans=(("basic", 10),)), True, id="basic-or-higher-basic"),
    pytest.param(BASIC_OR_HIGHER, facts(plans=(("advanced", 30),)), True, id="basic-or-higher-advanced"),
    pytest.param(BASIC_OR_HIGHER, facts(plans=(("free", 0),)), False, id="basic-or-higher-free"),
    pytest.param(BASIC_OR_HIGHER, NO_PLAN, False, id="basic-or-higher-no-live-plan"),
    pytest.param(
        BASIC_OR_HIGHER,
        facts(plans=(("free", 0), ("standard", 20))),
        True,
        id="basic-or-higher-one-of-two-plans",
    ),
    # "Common beta users" (the demo): a list
    pytest.param(
        segment(included=("acme", "globex")), facts(external_id="globex"), True, id="beta-list-member"
    ),
    pytest.param(
        segment(included=("acme", "globex")), facts(external_id="initech"), False, id="beta-list-other"
    ),
]


@pytest.mark.parametrize(("spec", "customer", "expected"), SEGMENTS)
def test_segment_holds__lists_and_rules__as_in_table(
    spec: SegmentSpec, customer: CustomerFacts, expected: bool
) -> None:
    assert segment_holds(spec, customer) is expected


VALID = [
    pytest.param(COUNTRY, "in", ["DE", "fr"], id="country-in-codes"),
    pytest.param(COUNTRY, "eq", "DE", id="country-eq"),
    pytest.param(PLAN, "neq", "business", id="plan-neq"),
    pytest.param(PLAN, "contains", "streaming", id="plan-contains"),
    pytest.param(PLAN_RANK, "gte", 10, id="rank-gte-int"),
    pytest.param(PLAN_RANK, "lte", 10.5, id="rank-lte-float"),
    pytest.param(PLAN_RANK, "not_in", (0, 5), id="rank-not-in-tuple"),
    pytest.param(STATUS, "in", ["trialing", "past_due"], id="status-in"),
    pytest.param("traits.industry", "eq", "media", id="trait-eq-text"),
    pytest.param("traits.beta", "eq", True, id="trait-eq-bool"),
    pytest.param("traits.seats", "gte", 40, id="trait-gte"),
    pytest.param("traits.tags", "contains", "vip", id="trait-contains"),
]


@pytest.mark.parametrize(("attribute", "op", "value"), VALID)
def test_validate_condition__sensible_condition__accepted(attribute: str, op: str, value: object) -> None:
    validate_condition(attribute, op, value)


INVALID = [
    pytest.param("colour", "eq", "red", "not an attribute", id="unknown-attribute"),
    pytest.param("traits.", "eq", "x", "Name the trait", id="empty-trait-name"),
    pytest.param("traits.  ", "eq", "x", "Name the trait", id="blank-trait-name"),
    pytest.param(PLAN, "like", "x", "not an operator", id="unknown-op"),
    pytest.param(COUNTRY, "in", "DE", "needs a non-empty list", id="in-needs-list"),
    pytest.param(PLAN, "not_in", "basic", "needs a non-empty list", id="not-in-needs-list"),
    pytest.param(PLAN, "in", [], "needs a non-empty list", id="in-empty-list"),
    pytest.param(PLAN_RANK, "gte", "10", "needs a number", id="gte-needs-number"),
    pytest.param("traits.seats", "lte", True, "needs a number", id="lte-bool-is-not-number"),
    pytest.param("traits.seats", "gte", float("nan"), "needs a number", id="gte-nan"),
    pytest.param(COUNTRY, "gte", 1, "is not a number", id="gte-on-country"),
    pytest.param(PLAN, "lte", 1, "is not a number", id="lte-on-plan"),
    pytest.param(PLAN_RANK, "contains", 1, "plan_rank is a number", id="contains-on-rank"),
    pytest.param(COUNTRY, "eq", "Germany", "two-letter", id="country-not-a-code"),
    pytest.param(COUNTRY, "in", ["DE", 49], "two-letter", id="country-list-with-number"),
    pytest.param(PLAN, "eq", "", "by its key", id="plan-empty"),
    pytest.param(PLAN_RANK, "eq", "ten", "whole number", id="rank-eq-text"),
    pytest.param(PLAN_RANK, "in", [10, True], "whole number", id="rank-in-bool"),
    pytest.param(STATUS, "eq", "activ", "not a subscription status", id="status-typo"),
    pytest.param("traits.tags", "eq", ["a"], "single text", id="trait-eq-list"),
    pytest.param("traits.tags", "eq", None, "single text", id="trait-eq-null"),
    pytest.param("traits.tags", "in", [{"a": 1}], "single text", id="trait-in-objects"),
    pytest.param("traits.tags", "contains", "", "some text", id="contains-empty-text"),
]


@pytest.mark.parametrize(("attribute", "op", "value", "message"), INVALID)
def test_validate_condition__nonsense_condition__raises_value_error_saying_why(
    attribute: str, op: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_condition(attribute, op, value)
