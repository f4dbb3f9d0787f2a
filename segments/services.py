"""Writes to segments and targeting rules. A segment edit moves the catalog revision: it can
change the answer of any customer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from django.core.exceptions import ValidationError

from audit.writes import atomic, delete_audited, save_audited
from catalog import permissions as catalog_permissions
from catalog.models import Feature, Tag
from catalog.values import clean_value
from segments import permissions
from segments.models import Condition, Segment, SegmentMember, TargetingRule
from toolkit import revisions
from toolkit.change_context import change_context
from toolkit.upsert import assign, is_noop, locked

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from subscriptions.models import Customer


@atomic
def segment_put(
    *,
    key: str,
    values: dict[str, Any],
    tags: list[Tag] | None,
    included: list[Customer] | None,
    excluded: list[Customer] | None,
    rules: list[list[dict]] | None,
    partial: bool,
    actor: User | None,
    reason: str,
    source: str,
) -> tuple[Segment, bool]:
    """Create the segment `key` or set what is given: its own fields and tags, its lists of
    included and excluded customers, its rules (each a list of conditions). Only what differs
    is written; a put that changes nothing needs only the permission to change the segment.
    Returns the segment and whether it was created."""
    who = {"actor": actor, "reason": reason, "source": source}
    segment, before = locked(Segment.objects, partial=partial, missing=f"No segment {key}.", key=key)
    created = segment is None
    segment = segment or Segment(key=key)
    if tags is not None and not created and {t.pk for t in tags} == {t.pk for t in segment.tags.all()}:
        tags = None
    assign(segment, values)
    wrote = False
    if created or tags is not None or not is_noop(segment, before):
        segment_save(segment=segment, tags=tags, **who)
        wrote = True
    if included is not None or excluded is not None:
        members = [] if created else list(segment.members.all())
        now_in = {m.customer_id for m in members if m.kind == "included"}
        now_out = {m.customer_id for m in members if m.kind == "excluded"}
        new_in = now_in if included is None else {c.pk for c in included}
        new_out = now_out if excluded is None else {c.pk for c in excluded}
        if (new_in, new_out) != (now_in, now_out):
            by_pk = {m.customer_id: m.customer for m in segment.members.select_related("customer")}
            by_pk.update({c.pk: c for c in (included or []) + (excluded or [])})
            segment_set_lists(
                segment=segment,
                included=[by_pk[pk] for pk in new_in],
                excluded=[by_pk[pk] for pk in new_out],
                **who,
            )
            wrote = True
    if rules is not None and _signature(rules) != _signature([] if created else _current_rules(segment)):
        segment_set_rules(segment=segment, rules=rules, **who)
        wrote = True
    if not wrote:
        permissions.require_change_segment(actor, segment)
    return segment, created


@atomic
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


@atomic
def segment_part_save(
    *, part: Condition | SegmentMember, actor: User | None, reason: str, source: str
) -> Condition | SegmentMember:
    """Save one condition or list entry of a segment (the admin's inlines)."""
    permissions.require_change_segment(actor, part.segment)
    save_audited(part, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return part


@atomic
def segment_part_delete(
    *, part: Condition | SegmentMember, actor: User | None, reason: str, source: str
) -> None:
    """Remove one condition or list entry of a segment."""
    permissions.require_change_segment(actor, part.segment)
    delete_audited(part, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()


@atomic
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


@atomic
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


@atomic
def targeting_rule_save(
    *, rule: TargetingRule, actor: User | None, reason: str, source: str
) -> TargetingRule:
    """Save one targeting rule of a feature (the admin's inline)."""
    catalog_permissions.require_change_feature_rules(actor, rule.feature)
    save_audited(rule, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()
    return rule


@atomic
def targeting_rule_delete(*, rule: TargetingRule, actor: User | None, reason: str, source: str) -> None:
    catalog_permissions.require_change_feature_rules(actor, rule.feature)
    delete_audited(rule, actor=actor, reason=reason, source=source)
    revisions.catalog_changed()


@atomic
def feature_set_rules(
    *,
    feature: Feature,
    rules: Sequence[tuple[Segment, object]],
    actor: User | None,
    reason: str,
    source: str,
) -> list[TargetingRule]:
    """Replace a feature's ordered targeting rules with (segment, value) pairs; rules whose
    position, segment and value stay the same record nothing, and the same list again writes
    nothing at all."""
    catalog_permissions.require_change_feature_rules(actor, feature)
    segments = [segment.pk for segment, _ in rules]
    if len(set(segments)) != len(segments):
        raise ValidationError("A segment may appear only once in a feature's rules.")
    existing = {rule.segment_id: rule for rule in feature.rules.all()}
    if _same_rules(feature, existing.values(), rules):
        return sorted(existing.values(), key=lambda rule: rule.position)
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


def _same_rules(
    feature: Feature, existing: Iterable[TargetingRule], rules: Sequence[tuple[Segment, object]]
) -> bool:
    current = sorted((rule.position, rule.segment_id, rule.value) for rule in existing)
    try:
        wanted = [
            (position, segment.pk, clean_value(feature, value))
            for position, (segment, value) in enumerate(rules, start=1)
        ]
    except (ValidationError, TypeError):  # a value that does not fit: saving it says why
        return False
    return current == wanted


def _canonical(value: Any) -> bytes:
    """A condition's value as canonical JSON; the standard library writes what orjson cannot
    (an integer beyond 64 bits stored before the API refused them), so such a rule can be
    replaced."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _signature(rules: list[list[dict]]) -> list[tuple]:
    """Rules as comparable data: (rule number, attribute, op, value as canonical JSON)."""
    return sorted(
        (number, c["attribute"], c["op"], _canonical(c["value"]))
        for number, conditions in enumerate(rules, start=1)
        for c in conditions
    )


def _current_rules(segment: Segment) -> list[list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for c in segment.conditions.order_by("rule", "id"):
        grouped.setdefault(c.rule, []).append({"attribute": c.attribute, "op": c.op, "value": c.value})
    return [conditions for _, conditions in sorted(grouped.items())]
