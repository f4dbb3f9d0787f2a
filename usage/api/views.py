"""The usage endpoints (docs/usage.md): `consume`, which checks and counts in one atomic step,
and `usage`, which counts what already happened.

Both find the customer's metered answer as a check does (the same snapshot, read in the key's
round trip: `checks.views.CheckView`) and count through `usage.meter`. Neither changes a record
anyone edits, so neither asks for a change reason, and a key of either scope may call them.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from checks import snapshots
from checks.views import CheckView
from toolkit.rest.exceptions import BadRequest, Conflict
from usage import meter
from usage.api.serializers import ConsumeIn, ConsumeOut, UsageIn, UsageOut

# How far ahead of this server's clock a reported usage may be stamped (clocks drift).
CLOCK_SKEW = timedelta(minutes=5)


class MeteredView(CheckView):
    """A POST about one customer's metered feature: the answer's meter, read like a check's."""

    any_scope = True  # api.permissions.HasScope

    def initial(self, request, *args, **kwargs):
        APIView.initial(self, request, *args, **kwargs)  # no X-Change-Reason: nothing is edited

    def prefetch(self, request, batch) -> None:
        # The snapshot's reads join the key's round trip, as a check's do; it is not a check.
        self.hot = snapshots.Prefetch(external_id=self.kwargs["external_id"], at=timezone.now())
        self.hot.queue(batch)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code in (200, 202):
            del response["Allow"]  # as a check's answer: the fast path's bytes (usage.api.fast)
        return response

    def meter(self, external_id: str, feature_key: str) -> meter.Meter:
        snapshot = self.prepared().snapshot() if "\x00" not in external_id else None
        if snapshot is None or not snapshot.exists:
            raise NotFound(f"No customer {external_id}.")
        found = snapshot.meter_of(feature_key)
        if found is None:
            if snapshot.answer(feature_key) is None:
                raise NotFound(f"No feature {feature_key}.")
            raise BadRequest(
                f"{feature_key} is not metered: only metered features count usage.", "not_metered"
            )
        return found

    def answer(self, found: meter.Meter, outcome: meter.Outcome) -> dict:
        return {
            "customer": found.external_id,
            "feature": found.feature_key,
            "used": outcome.used,
            "limit": outcome.limit,
            "remaining": outcome.remaining(),
            "resets_at": snapshots.iso(found.resets_at),
            "limit_type": "hard" if found.hard else "soft",
        }


class ConsumeView(MeteredView):
    """Check and consume in one atomic step. 200 with `allowed: false`, nothing consumed, when
    the customer does not have the feature or a hard limit would be passed."""

    @extend_schema(
        operation_id="customers_entitlements_consume", request=ConsumeIn, responses={200: ConsumeOut}
    )
    def post(self, request, external_id: str, feature_key: str):
        data = ConsumeIn().run_validation(request.data)
        found = self.meter(external_id, feature_key)
        try:
            outcome = meter.consume(found, data["quantity"], data.get("idempotency_key", ""))
        except meter.CounterFull as error:
            raise Conflict(str(error)) from error
        body = {"allowed": outcome.allowed, **self.answer(found, outcome)}
        return Response(body, headers={"Idempotent-Replayed": "true"} if outcome.replayed else None)


class UsageView(MeteredView):
    """Count usage that already happened (soft accounting): counted whatever the limit, in the
    current period, 202 with the running total. A customer without the feature: 200 with
    `recorded: false`, nothing counted."""

    @extend_schema(
        operation_id="customers_usage_create", request=UsageIn, responses={202: UsageOut, 200: UsageOut}
    )
    def post(self, request, external_id: str):
        data = UsageIn().run_validation(request.data)
        found = self.meter(external_id, data["feature"])
        now = timezone.now()
        at = data.get("timestamp") or now
        if at > now + CLOCK_SKEW:
            raise BadRequest("The timestamp is in the future: report usage once it has happened.", "invalid")
        if at < found.period_start:
            raise BadRequest(
                f"The timestamp falls in an earlier period of {found.feature_key}, which ended at "
                f"{snapshots.iso(found.period_start)}: only the current period can be reported.",
                "period_closed",
            )
        try:
            outcome = meter.report(found, data["quantity"], data.get("idempotency_key", ""), at=at)
        except meter.CounterFull as error:
            raise Conflict(str(error)) from error
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
        code = status.HTTP_202_ACCEPTED if outcome.recorded else status.HTTP_200_OK
        return Response(
            {"recorded": outcome.recorded, **self.answer(found, outcome)}, status=code, headers=headers
        )
