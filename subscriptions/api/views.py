"""Customer, subscription and override endpoints, and the entitlement checks (docs/api.md).

Each write is a plain function (`put_customer`, `put_subscription`, `create_override`,
`delete_override`) named in its view's `writes`: it turns the validated body into a call of
`subscriptions.services`, which the view makes for a request and a scheduled change when due.
The checks are answered from cached snapshots (`checks.views`, `checks.snapshots`).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from catalog.models import Feature, Item
from checks import snapshots
from checks.views import CheckView
from subscriptions import services
from subscriptions.api.serializers import (
    CustomerIn,
    CustomerOut,
    EntitlementsOut,
    FeatureAnswerOut,
    OverrideIn,
    OverrideOut,
    SubscriptionIn,
    SubscriptionOut,
)
from subscriptions.models import Customer, Override, Subscription
from toolkit.rest.schema import body_example, path_parameter
from toolkit.rest.views import ApiListView, ApiView, ListQuery, Write
from toolkit.upsert import HeldRows

EXTERNAL_ID = path_parameter("external_id", "The customer's external id.", "acme", slug=False)
SUBSCRIPTION_ID = path_parameter("external_id", "The subscription's external id.", "sub-acme", slug=False)
FEATURE_KEY = path_parameter("feature_key", "The feature's key.", "max-members")
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="An ETag from an earlier answer: 304 while it still holds.",
)
ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description="Names the revisions and the valid_until of the answer.",
)
BIGINT_MAX = 2**63 - 1


def _customer(external_id: str) -> Customer:
    # An id with a NUL character (%00 in the path) can be no stored id: PostgreSQL refuses to compare one.
    customer = None if "\x00" in external_id else Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise NotFound(f"No customer {external_id}.")
    return customer


def _subscriptions():
    return Subscription.objects.select_related("customer", "plan").prefetch_related("addons__addon")


def _subscription(external_id: str) -> Subscription:
    subscription = None if "\x00" in external_id else _subscriptions().filter(external_id=external_id).first()
    if subscription is None:
        raise NotFound(f"No subscription {external_id}.")
    return subscription


def _subscription_row(external_id: str) -> Subscription:
    """The subscription alone (for its overrides), or 404."""
    subscription = (
        None
        if "\x00" in external_id
        else Subscription.objects.select_related("customer").filter(external_id=external_id).first()
    )
    if subscription is None:
        raise NotFound(f"No subscription {external_id}.")
    return subscription


def _overrides():
    return Override.objects.select_related("subscription__customer", "feature")


# --- checks ----------------------------------------------------------------------------------


@extend_schema(parameters=[EXTERNAL_ID, IF_NONE_MATCH, ETAG])
class CustomerEntitlementsView(CheckView):
    """Every active feature's answer for the customer, now. Carries an ETag; If-None-Match
    with it answers 304 while nothing changed."""

    @extend_schema(
        operation_id="customers_entitlements_list",
        responses={
            200: EntitlementsOut,
            304: OpenApiResponse(description="Not modified: the ETag still holds."),
        },
    )
    def get(self, request, external_id: str):
        hot = self.prepared()
        unchanged = self.not_modified("c")
        if unchanged is not None:
            return unchanged
        snapshot = hot.snapshot()
        if not snapshot.exists:
            raise NotFound(f"No customer {external_id}.")
        usage = snapshots.usage_of(snapshot)
        tag = snapshots.usage_tag(usage)
        unchanged = self.not_modified("c", tag) if tag else None
        if unchanged is not None:
            return unchanged
        body = snapshots.customer_body(external_id, hot.at, snapshot, usage)
        return self.json(body, snapshots.etag("c", hot.revisions, snapshot.valid_until, tag))


@extend_schema(parameters=[EXTERNAL_ID, FEATURE_KEY, IF_NONE_MATCH, ETAG])
class CustomerFeatureEntitlementView(CheckView):
    """One feature's answer for the customer (an archived feature answers off, source
    `archived`). An unknown customer or feature is 404."""

    def counted_feature(self) -> str:
        return self.kwargs["feature_key"]

    @extend_schema(
        operation_id="customers_entitlements_retrieve",
        responses={
            200: FeatureAnswerOut,
            304: OpenApiResponse(description="Not modified: the ETag still holds."),
        },
    )
    def get(self, request, external_id: str, feature_key: str):
        hot = self.prepared()
        unchanged = self.not_modified("f")
        if unchanged is not None:
            return unchanged
        snapshot = hot.snapshot()
        if not snapshot.exists:
            raise NotFound(f"No customer {external_id}.")
        answer = snapshot.answer(feature_key)
        if answer is None:
            raise NotFound(f"No feature {feature_key}.")
        usage = snapshots.usage_of(snapshot, feature_key)
        tag = snapshots.usage_tag(usage)
        unchanged = self.not_modified("f", tag) if tag else None
        if unchanged is not None:
            return unchanged
        entry = snapshots.live_entry(answer[0], usage, feature_key) if usage else answer[0]
        body = snapshots.feature_body(external_id, feature_key, entry)
        return self.json(body, snapshots.etag("f", hot.revisions, answer[1], tag))


# --- customers -------------------------------------------------------------------------------


class CustomerQuery(ListQuery):
    country = serializers.CharField(
        max_length=2, required=False, allow_blank=True, help_text="ISO 3166 code."
    )


@extend_schema(parameters=[CustomerQuery])
class CustomerListView(ApiListView):
    """Every customer, by external id."""

    serializer_class = CustomerOut
    cursor_ordering = "external_id"
    query_class = CustomerQuery

    def get_queryset(self):
        customers = Customer.objects.all()
        if "country" in self.query:
            customers = customers.filter(country=self.query["country"].upper())
        return customers


@extend_schema(parameters=[EXTERNAL_ID])
class CustomerDetailView(ApiView):
    """One customer. PUT creates or replaces it; PATCH changes the fields given."""

    @extend_schema(responses=CustomerOut, operation_id="customers_retrieve")
    def get(self, request, external_id: str):
        return Response(CustomerOut(_customer(external_id)).data)

    @extend_schema(
        request=CustomerIn,
        responses={200: CustomerOut, 201: CustomerOut},
        operation_id="customers_put",
        examples=[
            body_example(
                "A customer", {"name": "Acme Corp", "country": "US", "traits": {"industry": "media"}}
            )
        ],
    )
    def put(self, request, external_id: str):
        return self._write(external_id)

    @extend_schema(
        request=CustomerIn,
        responses=CustomerOut,
        operation_id="customers_patch",
        examples=[body_example("Moved", {"country": "DE"})],
    )
    def patch(self, request, external_id: str):
        return self._write(external_id)

    def _write(self, external_id: str):
        _, created = self.perform(external_id=external_id)
        return Response(
            CustomerOut(_customer(external_id)).data, status=status.HTTP_201_CREATED if created else 200
        )


def put_customer(data: dict, *, external_id: str, **who) -> tuple[Customer, bool]:
    return services.customer_put(external_id=external_id, values=data, **who)


def preload_customers(rows: HeldRows, paths: list[dict], bodies: list[dict]) -> None:
    rows.load(Customer.objects.select_for_update(), "external_id", [p["external_id"] for p in paths])


CustomerDetailView.writes = {
    "PUT": Write(CustomerIn, put_customer, partial=False, preload=preload_customers),
    "PATCH": Write(CustomerIn, put_customer, partial=True, preload=preload_customers),
}


# --- subscriptions ---------------------------------------------------------------------------


class SubscriptionQuery(ListQuery):
    customer = serializers.CharField(
        max_length=128, required=False, allow_blank=True, help_text="Only this customer's (external id)."
    )
    plan = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Only those on this plan (key)."
    )
    status = serializers.ChoiceField(choices=Subscription.Status.choices, required=False, allow_blank=True)


@extend_schema(parameters=[SubscriptionQuery])
class SubscriptionListView(ApiListView):
    """Every subscription, by external id."""

    serializer_class = SubscriptionOut
    cursor_ordering = "external_id"
    query_class = SubscriptionQuery

    def get_queryset(self):
        subscriptions = _subscriptions()
        if "customer" in self.query:
            subscriptions = subscriptions.filter(customer__external_id=self.query["customer"])
        if "plan" in self.query:
            subscriptions = subscriptions.filter(plan__key=self.query["plan"])
        if "status" in self.query:
            subscriptions = subscriptions.filter(status=self.query["status"])
        return subscriptions


@extend_schema(parameters=[SUBSCRIPTION_ID])
class SubscriptionDetailView(ApiView):
    """One subscription. PUT creates or replaces it (with its add-ons); PATCH changes the
    fields given. A legacy or archived plan is refused for a new subscription or a plan change."""

    @extend_schema(responses=SubscriptionOut, operation_id="subscriptions_retrieve")
    def get(self, request, external_id: str):
        return Response(SubscriptionOut(_subscription(external_id)).data)

    @extend_schema(
        request=SubscriptionIn,
        responses={200: SubscriptionOut, 201: SubscriptionOut},
        operation_id="subscriptions_put",
        examples=[
            body_example(
                "Business with two extra seats",
                {
                    "customer": "acme",
                    "plan": "business",
                    "status": "active",
                    "current_period_end": "2030-01-31T00:00:00Z",
                    "addons": [{"addon": "extra-seats", "quantity": 2}],
                },
            )
        ],
    )
    def put(self, request, external_id: str):
        return self._write(external_id)

    @extend_schema(
        request=SubscriptionIn,
        responses=SubscriptionOut,
        operation_id="subscriptions_patch",
        examples=[body_example("Unpaid", {"status": "past_due", "past_due_since": "2030-01-01T00:00:00Z"})],
    )
    def patch(self, request, external_id: str):
        return self._write(external_id)

    def _write(self, external_id: str):
        _, created = self.perform(external_id=external_id)
        return Response(
            SubscriptionOut(_subscription(external_id)).data,
            status=status.HTTP_201_CREATED if created else 200,
        )


def put_subscription(data: dict, *, external_id: str, **who) -> tuple[Subscription, bool]:
    values = dict(data)
    addons = values.pop("addons", None)
    return services.subscription_put(
        external_id=external_id, values=values, addons=None if addons is None else _addons(addons), **who
    )


def _addons(addons: list[dict]) -> list[tuple[Item, int]]:
    keys = [a["addon"] for a in addons]
    if len(set(keys)) != len(keys):
        raise ValidationError({"addons": ["Each add-on may appear only once."]})
    found = {item.key: item for item in Item.objects.filter(key__in=set(keys))}
    if set(keys) - set(found):
        raise ValidationError(
            {
                "addons": [
                    {} if a["addon"] in found else {"addon": [f"Unknown add-on {a['addon']}."]}
                    for a in addons
                ]
            }
        )
    return [(found[a["addon"]], a["quantity"]) for a in addons]


# A PATCH of a subscription's plan, status or dates (not its customer or add-ons) may run in
# bulk: the rows it reads are loaded for the whole run. Any other goes on its own.
BULK_SUBSCRIPTION_FIELDS = frozenset(
    {"plan", "status", "trial_ends_at", "current_period_end", "past_due_since"}
)


def preload_subscriptions(rows: HeldRows, paths: list[dict], bodies: list[dict]) -> list[bool]:
    taken = [set(body) <= BULK_SUBSCRIPTION_FIELDS for body in bodies]
    ids = [p["external_id"] for p, take in zip(paths, taken, strict=True) if take]
    queryset = Subscription.objects.select_for_update(of=("self",)).select_related("customer", "plan")
    rows.load(queryset, "external_id", ids)
    rows.load(
        Item.objects.all(),
        "key",
        [b["plan"] for b, t in zip(bodies, taken, strict=True) if t and "plan" in b],
    )
    return taken


SubscriptionDetailView.writes = {
    "PUT": Write(SubscriptionIn, put_subscription, partial=False),
    "PATCH": Write(SubscriptionIn, put_subscription, partial=True, preload=preload_subscriptions),
}


# --- overrides -------------------------------------------------------------------------------


@extend_schema(parameters=[SUBSCRIPTION_ID])
class SubscriptionOverridesView(ApiListView, ApiView):
    """The subscription's overrides (GET), or a new one (POST): grant a feature (with a value)
    or revoke it, for a while or for good."""

    serializer_class = OverrideOut
    cursor_ordering = "pk"

    def get_queryset(self):
        subscription = _subscription_row(self.kwargs["external_id"])
        return _overrides().filter(subscription=subscription)

    @extend_schema(operation_id="subscriptions_overrides_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=OverrideIn,
        responses={201: OverrideOut},
        operation_id="subscriptions_overrides_create",
        examples=[
            body_example(
                "4K for an event weekend",
                {
                    "feature": "4k-streaming",
                    "effect": "grant",
                    "value": True,
                    "valid_from": "2030-06-06T00:00:00Z",
                    "valid_until": "2030-06-09T00:00:00Z",
                },
            )
        ],
    )
    def post(self, request, external_id: str):
        override = self.perform(external_id=external_id)
        return Response(OverrideOut(_overrides().get(pk=override.pk)).data, status=status.HTTP_201_CREATED)


def create_override(data: dict, *, external_id: str, **who) -> Override:
    # Overlapping overrides are refused by the service (and, when two race, by the database's
    # exclusion constraint behind it).
    return services.override_create(
        subscription_id=external_id,
        feature_key=data["feature"],
        effect=data["effect"],
        value=data.get("value"),
        valid_from=data["valid_from"],
        valid_until=data["valid_until"],
        **who,
    )


def preload_overrides(rows: HeldRows, paths: list[dict], bodies: list[dict]) -> None:
    queryset = Subscription.objects.select_for_update(of=("self",)).select_related("customer")
    rows.load(queryset, "external_id", [p["external_id"] for p in paths])
    rows.load(Feature.objects.all(), "key", [b["feature"] for b in bodies])
    pairs = []  # the overrides already there, which a new one must not overlap
    for path, body in zip(paths, bodies, strict=True):
        subscription = rows.get(Subscription, {"external_id": path["external_id"]})
        feature = rows.get(Feature, {"key": body["feature"]})
        if subscription is not None and feature is not None:
            pairs.append((feature.pk, subscription.pk))
    rows.load(Override.objects.all(), ("feature_id", "subscription_id"), pairs, many=True)


SubscriptionOverridesView.writes = {"POST": Write(OverrideIn, create_override, preload=preload_overrides)}


@extend_schema(parameters=[path_parameter("override_id", "The override's id.", 1)])
class OverrideDetailView(ApiView):
    """One override; DELETE removes it (history keeps it)."""

    @extend_schema(responses=OverrideOut, operation_id="overrides_retrieve")
    def get(self, request, override_id: int):
        return Response(OverrideOut(_override(override_id)).data)

    @extend_schema(responses={204: None}, operation_id="overrides_delete")
    def delete(self, request, override_id: int):
        self.perform(override_id=override_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _override(override_id: int) -> Override:
    override = _overrides().filter(pk=override_id).first() if 0 < override_id <= BIGINT_MAX else None
    if override is None:
        raise NotFound(f"No override {override_id}.")
    return override


def delete_override(data: None, *, override_id: int, **who) -> None:
    services.override_delete(override=_override(override_id), **who)


OverrideDetailView.writes = {"DELETE": Write(None, delete_override)}
