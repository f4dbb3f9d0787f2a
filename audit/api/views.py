"""Schedule, read and cancel writes to be made later. A change is checked for shape when
scheduled and applied as that write, with its author's permissions, when due."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from audit.api.serializers import ScheduledChangeIn, ScheduledChangeOut
from audit.models import ScheduledChange
from audit.scheduling import cancel_change, schedule_change
from toolkit.rest.views import ApiView


def _visible(request, pk: int) -> ScheduledChange:
    """A change its author may see, or anyone who may view scheduled changes; else 404."""
    change = ScheduledChange.objects.select_related("created_by").filter(pk=pk).first()
    user = request.user
    if change is None or (
        change.created_by_id != user.pk and not user.has_perm("audit.view_scheduledchange")
    ):
        raise NotFound(f"No scheduled change {pk}.")
    return change


class ScheduledChangeListView(ApiView):
    @extend_schema(
        request=ScheduledChangeIn, responses={201: ScheduledChangeOut}, operation_id="scheduled_change_create"
    )
    def post(self, request):
        data = ScheduledChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        stored = data.validated_data["request"]
        change = schedule_change(
            method=stored["method"],
            path=stored["path"],
            body=stored.get("body"),
            effective_at=data.validated_data["effective_at"],
            **self.who(),
        )
        return Response(ScheduledChangeOut(change).data, status=status.HTTP_201_CREATED)


class ScheduledChangeDetailView(ApiView):
    @extend_schema(responses=ScheduledChangeOut, operation_id="scheduled_change_retrieve")
    def get(self, request, pk: int):
        return Response(ScheduledChangeOut(_visible(request, pk)).data)


class ScheduledChangeCancelView(ApiView):
    @extend_schema(request=None, responses=ScheduledChangeOut, operation_id="scheduled_change_cancel")
    def post(self, request, pk: int):
        change = cancel_change(change=_visible(request, pk), **self.who())
        return Response(ScheduledChangeOut(change).data)
