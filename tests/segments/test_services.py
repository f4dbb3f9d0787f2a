"""Writes to segments and targeting rules through their services, on PostgreSQL: the rules
they keep and the history they leave."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from segments import services
from segments.models import Condition, Segment, SegmentMember, TargetingRule
from tests import factories as f
from toolkit.change_context import ChangeReasonRequired, change_context

pytestmark = pytest.mark.django_db

WHO = {"actor": None, "reason": "Ticket PRD-8", "source": "shell"}


@pytest.fixture
def beta(db):
    with change_context(actor=None, reason="Test data", source="shell"):
        return SimpleNamespace(
            segment=f.SegmentFactory(key="beta"),
            acme=f.CustomerFactory(external_id="acme"),
            contoso=f.CustomerFactory(external_id="contoso"),
            globex=f.CustomerFactory(external_id="globex"),
        )


def lists_of(segment) -> dict[str, str]:
    return dict(SegmentMember.objects.filter(segment=segment).values_list("customer__external_id", "kind"))


# --- lists --------------------------------------------------------------------------------------


def test_segment_set_lists__empty_segment__customers_listed_as_given(beta):
    services.segment_set_lists(
        segment=beta.segment, included=[beta.acme, beta.contoso], excluded=[beta.globex], **WHO
    )

    assert lists_of(beta.segment) == {"acme": "included", "contoso": "included", "globex": "excluded"}


def test_segment_set_lists__customer_on_both_lists__refused_and_lists_unchanged(beta):
    services.segment_set_lists(segment=beta.segment, included=[beta.acme], excluded=[], **WHO)
    history_before = SegmentMember.history.count()

    with pytest.raises(ValidationError) as error:
        services.segment_set_lists(
            segment=beta.segment, included=[beta.acme, beta.contoso], excluded=[beta.contoso], **WHO
        )

    assert error.value.message_dict["excluded"] == ["Both included and excluded: contoso."]
    assert lists_of(beta.segment) == {"acme": "included"}
    assert SegmentMember.history.count() == history_before


def test_segment_set_lists__new_lists__missing_removed_and_moved_one_changes_kind(beta):
    services.segment_set_lists(segment=beta.segment, included=[beta.acme, beta.contoso], excluded=[], **WHO)
    contoso_row = SegmentMember.objects.get(customer=beta.contoso)

    services.segment_set_lists(segment=beta.segment, included=[beta.globex], excluded=[beta.contoso], **WHO)

    assert lists_of(beta.segment) == {"contoso": "excluded", "globex": "included"}
    assert SegmentMember.objects.get(customer=beta.contoso).pk == contoso_row.pk
    assert [
        r.history_type for r in SegmentMember.history.filter(customer_id=beta.acme.pk).order_by("history_id")
    ] == [
        "+",
        "-",
    ]


def test_segment_set_lists__same_lists_again__records_no_new_history_row(beta):
    services.segment_set_lists(segment=beta.segment, included=[beta.acme], excluded=[beta.globex], **WHO)
    history_before = SegmentMember.history.count()

    services.segment_set_lists(segment=beta.segment, included=[beta.acme], excluded=[beta.globex], **WHO)

    assert SegmentMember.history.count() == history_before


# --- rules of a segment -------------------------------------------------------------------------


def test_segment_set_rules__one_condition_kept__it_stays_the_same_row(beta):
    rank = {"attribute": "plan_rank", "op": "gte", "value": 10}
    services.segment_set_rules(segment=beta.segment, rules=[[rank]], **WHO)
    kept = Condition.objects.get(segment=beta.segment)

    services.segment_set_rules(
        segment=beta.segment,
        rules=[[rank], [{"attribute": "country", "op": "in", "value": ["DE", "FR"]}]],
        **WHO,
    )

    rows = list(Condition.objects.filter(segment=beta.segment).order_by("rule"))
    assert [(c.rule, c.attribute, c.op, c.value) for c in rows] == [
        (1, "plan_rank", "gte", 10),
        (2, "country", "in", ["DE", "FR"]),
    ]
    assert rows[0].pk == kept.pk
    assert kept.history.count() == 1


def test_segment_set_rules__condition_that_cannot_match__refused(beta):
    with pytest.raises(ValidationError) as error:
        services.segment_set_rules(
            segment=beta.segment, rules=[[{"attribute": "country", "op": "eq", "value": "Germany"}]], **WHO
        )

    assert "two-letter ISO 3166 codes" in error.value.message_dict["value"][0]
    assert not Condition.objects.filter(segment=beta.segment).exists()


# --- targeting rules of a feature ---------------------------------------------------------------


@pytest.fixture
def targeting(db):
    with change_context(actor=None, reason="Test data", source="shell"):
        return SimpleNamespace(
            feature=f.FeatureFactory(key="change-request-version", custom=True, levels=["v1", "v2", "v3"]),
            beta=f.SegmentFactory(key="beta"),
            staff=f.SegmentFactory(key="staff"),
            legacy=f.SegmentFactory(key="legacy"),
        )


def rules_of(feature) -> list[tuple[int, str, object]]:
    return list(
        TargetingRule.objects.filter(feature=feature)
        .order_by("position")
        .values_list("position", "segment__key", "value")
    )


def test_feature_set_rules__reordered__positions_follow_the_new_order_in_the_same_rows(targeting):
    t = targeting
    services.feature_set_rules(feature=t.feature, rules=[(t.beta, "v2"), (t.staff, "v3")], **WHO)
    staff_rule = TargetingRule.objects.get(segment=t.staff)

    services.feature_set_rules(feature=t.feature, rules=[(t.staff, "v3"), (t.beta, "v2")], **WHO)

    assert rules_of(t.feature) == [(1, "staff", "v3"), (2, "beta", "v2")]
    assert TargetingRule.objects.get(segment=t.staff).pk == staff_rule.pk
    assert [r.position for r in staff_rule.history.order_by("history_id")] == [2, 1]


def test_feature_set_rules__segment_left_out__its_rule_removed(targeting):
    t = targeting
    services.feature_set_rules(feature=t.feature, rules=[(t.beta, "v2"), (t.legacy, "v1")], **WHO)

    services.feature_set_rules(feature=t.feature, rules=[(t.legacy, "v1")], **WHO)

    assert rules_of(t.feature) == [(1, "legacy", "v1")]


def test_feature_set_rules__same_rules_again__records_no_new_history_row(targeting):
    t = targeting
    services.feature_set_rules(feature=t.feature, rules=[(t.beta, "v2"), (t.staff, "v3")], **WHO)
    history_before = TargetingRule.history.count()

    services.feature_set_rules(feature=t.feature, rules=[(t.beta, "v2"), (t.staff, "v3")], **WHO)

    assert TargetingRule.history.count() == history_before


def test_feature_set_rules__segment_twice__refused_and_nothing_saved(targeting):
    t = targeting

    with pytest.raises(ValidationError, match="A segment may appear only once"):
        services.feature_set_rules(feature=t.feature, rules=[(t.beta, "v2"), (t.beta, "v3")], **WHO)

    assert rules_of(t.feature) == []


def test_feature_set_rules__value_not_a_level__refused_and_rules_unchanged(targeting):
    t = targeting
    services.feature_set_rules(feature=t.feature, rules=[(t.beta, "v2")], **WHO)

    with pytest.raises(ValidationError) as error:
        services.feature_set_rules(feature=t.feature, rules=[(t.staff, "v9"), (t.beta, "v2")], **WHO)

    assert "'v9' is not a level of change-request-version" in error.value.message_dict["value"][0]
    assert rules_of(t.feature) == [(1, "beta", "v2")]


# --- change control -----------------------------------------------------------------------------


def test_segment_save__unchanged__records_no_new_history_row(beta):
    segment = Segment.objects.get(key="beta")
    history_before = segment.history.count()

    services.segment_save(segment=segment, tags=[], **WHO)

    assert segment.history.count() == history_before


def test_segment_write__outside_a_change_context__raises_and_saves_nothing(db):
    with pytest.raises(ChangeReasonRequired):
        Segment(key="sneaky", name="Sneaky").save()

    assert not Segment.objects.filter(key="sneaky").exists()


@pytest.mark.parametrize(
    "model", [Segment, SegmentMember, Condition, TargetingRule], ids=lambda m: m.__name__
)
def test_queryset_update__on_a_tracked_model__raises(beta, model):
    with pytest.raises(ChangeReasonRequired), change_context(**WHO):
        model.objects.filter(pk__in=[]).update(pk=1)
