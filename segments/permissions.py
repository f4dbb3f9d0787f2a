"""Who may edit a segment (docs/permissions.md): holders of the model permission, or of the object
permission the segment's tags hand out (see catalog.permissions). `None` is a system job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from catalog.permissions import group_holds, has, holds_any, objects_permitted, sync_tag_permissions

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from segments.models import Segment

CHANGE_SEGMENT = "segments.change_segment"


def segment_perms_for_group(group: Group) -> list[str]:
    """A tag hands `change_segment` on tagged segments to groups that may edit segment rules."""
    return [CHANGE_SEGMENT] if group_holds(group, "segments.change_condition") else []


def sync_segment_permissions(segment: Segment, *, actor: User | None, reason: str, source: str) -> None:
    from segments.models import SegmentGroupPermission

    sync_tag_permissions(
        segment,
        group_model=SegmentGroupPermission,
        perms_for_group=segment_perms_for_group,
        actor=actor,
        reason=reason,
        source=source,
    )


def can_change_segment(user: User | None, segment: Segment | None = None) -> bool:
    return has(user, CHANGE_SEGMENT, segment)


def require_change_segment(user: User | None, segment: Segment) -> None:
    if not can_change_segment(user, segment):
        raise PermissionDenied(f"You may not change the segment {segment.key}.")


def require_add_segment(user: User | None) -> None:
    if not has(user, "segments.add_segment"):
        raise PermissionDenied("You may not add segments.")


def segments_changeable_by(user: User | None) -> QuerySet[Segment]:
    from segments.models import Segment, SegmentGroupPermission, SegmentUserPermission

    return objects_permitted(
        user, CHANGE_SEGMENT, Segment.objects.all(), SegmentUserPermission, SegmentGroupPermission
    )


def may_change_some_segment(user: User | None) -> bool:
    from segments.models import SegmentGroupPermission, SegmentUserPermission

    return holds_any(user, CHANGE_SEGMENT, SegmentUserPermission, SegmentGroupPermission)
