"""Who may edit a segment (DESIGN §3): holders of the model permission, or of the object
permission that the segment's tags hand out through guardian. `None` is a system job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from segments.models import Segment

CHANGE_SEGMENT = "segments.change_segment"


def can_change_segment(user: User | None, segment: Segment | None = None) -> bool:
    if user is None:
        return True
    if not user.is_active:
        return False
    return user.has_perm(CHANGE_SEGMENT) or (segment is not None and user.has_perm(CHANGE_SEGMENT, segment))


def require_change_segment(user: User | None, segment: Segment) -> None:
    if not can_change_segment(user, segment):
        raise PermissionDenied(f"You may not change the segment {segment.key}.")


def require_add_segment(user: User | None) -> None:
    if user is not None and not user.has_perm("segments.add_segment"):
        raise PermissionDenied("You may not add segments.")
