"""Writes to segments and targeting rules. A segment edit moves the catalog revision: it can
change the answer of any customer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.context import change_context
from audit.writes import delete_audited, save_audited
from catalog import permissions as catalog_permissions
from catalog import revisions
from catalog.models import Feature, Tag
from segments import permissions
from segments.models import Condition, Segment, SegmentMember, TargetingRule

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from subscriptions.models import Customer


@transaction.atomic
def segment_save(
    *,
    segment: Segment,
    tags: Iterable[Tag] | None = None,
    actor: User | None,
    reason: str,
    source: str,
) -> Segment:
    """Create or change a segment's name, description and tags."""
    if segment.pk is None:
        permissions.require_add_segment(actor)
    else:
        permissions.require_change_segment(actor, segment)
    save_audited(segment, actor=actor, reason=reason, source=source)
    if tags is not None and set(tags) != set(segment.tags.all()):
        catalog_permissions.require_retag(actor)
        with change_context(actor=actor, reason=reason, source=source):
            segment.tags.set(tags)
        permissions.sync_segment_permissions(segment, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return segment


@transaction.atomic
def segment_part_save(
    *, part: Condition | SegmentMember, actor: User | None, reason: str, source: str
) -> Condition | SegmentMember:
    """Save one condition or list entry of a segment (the admin's inlines)."""
    permissions.require_change_segment(actor, part.segment)
    save_audited(part, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return part


@transaction.atomic
def segment_part_delete(
    *, part: Condition | SegmentMember, actor: User | None, reason: str, source: str
) -> None:
    """Remove one condition or list entry of a segment."""
    permissions.require_change_segment(actor, part.segment)
    delete_audited(part, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()


@transaction.atomic
def segment_set_lists(
    *,
    segment: Segment,
    included: Sequence[Customer],
    excluded: Sequence[Customer],
    actor: User | None,
    reason: str,
    source: str,
) -> Segment:
    """Replace the segment's included and excluded customer lists; a customer on both is an
    error, as the intent would be unclear."""
    permissions.require_change_segment(actor, segment)
    wanted = {c.pk: SegmentMember.Kind.INCLUDED for c in included}
    clash = [c.external_id for c in excluded if c.pk in wanted]
    if clash:
        raise ValidationError({"excluded": f"Both included and excluded: {', '.join(sorted(clash))}."})
    wanted.update({c.pk: SegmentMember.Kind.EXCLUDED for c in excluded})
    existing = {m.customer_id: m for m in segment.members.all()}
    for customer_id, member in existing.items():
        if customer_id not in wanted:
            delete_audited(member, actor=actor, reason=reason, source=source)
        elif member.kind != wanted[customer_id]:
            member.kind = wanted[customer_id]
            save_audited(member, actor=actor, reason=reason, source=source)
    for customer_id, kind in wanted.items():
        if customer_id not in existing:
            member = SegmentMember(segment=segment, customer_id=customer_id, kind=kind)
            save_audited(member, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return segment


@transaction.atomic
def segment_set_rules(
    *,
    segment: Segment,
    rules: Sequence[Sequence[dict[str, Any]]],
    actor: User | None,
    reason: str,
    source: str,
) -> Segment:
    """Replace the segment's rules: each rule a list of conditions
    (`{"attribute", "op", "value"}`) that must all hold. Unchanged conditions stay as they are."""
    permissions.require_change_segment(actor, segment)
    wanted = [
        (number, c["attribute"], c["op"], c["value"])
        for number, conditions in enumerate(rules, start=1)
        for c in conditions
    ]
    existing = list(segment.conditions.all())
    keep: list[Condition] = []
    for condition in existing:
        signature = (condition.rule, condition.attribute, condition.op, condition.value)
        if signature in wanted:
            wanted.remove(signature)
            keep.append(condition)
        else:
            delete_audited(condition, actor=actor, reason=reason, source=source)
    for number, attribute, op, value in wanted:
        condition = Condition(segment=segment, rule=number, attribute=attribute, op=op, value=value)
        save_audited(condition, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return segment


@transaction.atomic
def targeting_rule_save(
    *, rule: TargetingRule, actor: User | None, reason: str, source: str
) -> TargetingRule:
    """Save one targeting rule of a feature (the admin's inline)."""
    catalog_permissions.require_change_feature_rules(actor, rule.feature)
    save_audited(rule, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return rule


@transaction.atomic
def targeting_rule_delete(*, rule: TargetingRule, actor: User | None, reason: str, source: str) -> None:
    catalog_permissions.require_change_feature_rules(actor, rule.feature)
    delete_audited(rule, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()


@transaction.atomic
def feature_set_rules(
    *,
    feature: Feature,
    rules: Sequence[tuple[Segment, object]],
    actor: User | None,
    reason: str,
    source: str,
) -> list[TargetingRule]:
    """Replace a feature's ordered targeting rules with (segment, value) pairs; rules whose
    position, segment and value stay the same record nothing."""
    catalog_permissions.require_change_feature_rules(actor, feature)
    segments = [segment.pk for segment, _ in rules]
    if len(set(segments)) != len(segments):
        raise ValidationError("A segment may appear only once in a feature's rules.")
    existing = {rule.segment_id: rule for rule in feature.rules.all()}
    result = []
    for segment_id, rule in existing.items():
        if segment_id not in segments:
            delete_audited(rule, actor=actor, reason=reason, source=source)
    # Positions are unique only per (feature, segment), so reordering needs no juggling.
    for position, (segment, value) in enumerate(rules, start=1):
        rule = existing.get(segment.pk) or TargetingRule(feature=feature, segment=segment)
        rule.position, rule.value = position, value
        result.append(save_audited(rule, actor=actor, reason=reason, source=source))
    revisions.catalog_changed()
    return result
