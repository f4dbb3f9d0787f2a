"""Customer, subscription and override endpoints, and the entitlement checks (docs/api.md).

Writes go through `subscriptions.services` as the key's owner, in one transaction; a PUT
that changes nothing only checks the permission the service would check. The checks are
answered from cached snapshots (`api.checks`, `api.snapshots`).
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from api import snapshots
from api.checks import CheckView
from catalog.models import Feature, Item
from subscriptions import permissions, services
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
from toolkit.rest.views import ApiListView, ApiView, ListQuery
from toolkit.upsert import assign, is_noop, locked

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
        body = snapshots.customer_body(external_id, hot.at, snapshot)
        return self.json(body, snapshots.etag("c", hot.revisions, snapshot.valid_until))


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
        body = snapshots.feature_body(external_id, feature_key, answer[0])
        return self.json(body, snapshots.etag("f", hot.revisions, answer[1]))


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
        return self._write(request, external_id, partial=False)

    @extend_schema(
        request=CustomerIn,
        responses=CustomerOut,
        operation_id="customers_patch",
        examples=[body_example("Moved", {"country": "DE"})],
    )
    def patch(self, request, external_id: str):
        return self._write(request, external_id, partial=True)

    def _write(self, request, external_id: str, *, partial: bool):
        body = CustomerIn(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        who = self.who()
        with transaction.atomic():
            customer, before = locked(
                Customer.objects,
                partial=partial,
                missing=f"No customer {external_id}.",
                external_id=external_id,
            )
            created = customer is None
            customer = customer or Customer(external_id=external_id)
            assign(customer, body.validated_data)
            if is_noop(customer, before):
                permissions.require(who["actor"], "change", "customer")
            else:
                services.customer_save(customer=customer, **who)
        return Response(
            CustomerOut(_customer(external_id)).data, status=status.HTTP_201_CREATED if created else 200
        )


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
        return self._write(request, external_id, partial=False)

    @extend_schema(
        request=SubscriptionIn,
        responses=SubscriptionOut,
        operation_id="subscriptions_patch",
        examples=[body_example("Unpaid", {"status": "past_due", "past_due_since": "2030-01-01T00:00:00Z"})],
    )
    def patch(self, request, external_id: str):
        return self._write(request, external_id, partial=True)

    def _write(self, request, external_id: str, *, partial: bool):
        body = SubscriptionIn(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        addons = values.pop("addons", None)
        who = self.who()
        with transaction.atomic():
            subscription, before = locked(
                Subscription.objects.select_related("plan"),
                partial=partial,
                missing=f"No subscription {external_id}.",
                external_id=external_id,
            )
            created = subscription is None
            if "customer" in values:
                customer = Customer.objects.filter(external_id=values["customer"]).first()
                if customer is None:
                    raise ValidationError({"customer": [f"Unknown customer {values['customer']}."]})
                if not created and customer.pk != subscription.customer_id:
                    raise ValidationError({"customer": ["A subscription stays with its customer."]})
                values["customer"] = customer
            if "plan" in values:
                plan = Item.objects.filter(key=values["plan"]).first()
                if plan is None:
                    raise ValidationError({"plan": [f"Unknown plan {values['plan']}."]})
                values["plan"] = plan
            wanted_addons = None if addons is None else self._addons(addons)
            subscription = subscription or Subscription(external_id=external_id)
            assign(subscription, values)
            wrote = False
            if not is_noop(subscription, before):
                services.subscription_save(subscription=subscription, **who)
                wrote = True
            if wanted_addons is not None:
                current = {a.addon_id: a.quantity for a in subscription.addons.all()} if not created else {}
                if current != {item.pk: quantity for item, quantity in wanted_addons}:
                    services.subscription_set_addons(subscription=subscription, addons=wanted_addons, **who)
                    wrote = True
            if not wrote:
                permissions.require(who["actor"], "change", "subscription")
        return Response(
            SubscriptionOut(_subscription(external_id)).data,
            status=status.HTTP_201_CREATED if created else 200,
        )

    def _addons(self, addons: list[dict]) -> list[tuple[Item, int]]:
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
        body = OverrideIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        subscription = _subscription_row(external_id)
        feature = Feature.objects.filter(key=data["feature"]).first()
        if feature is None:
            raise ValidationError({"feature": [f"Unknown feature {data['feature']}."]})
        window = {"valid_from": data["valid_from"], "valid_until": data["valid_until"]}
        who = self.who()
        with transaction.atomic():
            # Overlapping overrides are refused by the service (and, when two race, by the
            # database's exclusion constraint behind it).
            if data["effect"] == Override.Effect.REVOKE:
                override = services.override_revoke(
                    subscription=subscription, feature=feature, **window, **who
                )
            else:
                override = services.override_grant(
                    subscription=subscription, feature=feature, value=data["value"], **window, **who
                )
        return Response(OverrideOut(_overrides().get(pk=override.pk)).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[path_parameter("override_id", "The override's id.", 1)])
class OverrideDetailView(ApiView):
    """One override; DELETE removes it (history keeps it)."""

    def _override(self, override_id: int) -> Override:
        override = _overrides().filter(pk=override_id).first() if 0 < override_id <= BIGINT_MAX else None
        if override is None:
            raise NotFound(f"No override {override_id}.")
        return override

    @extend_schema(responses=OverrideOut, operation_id="overrides_retrieve")
    def get(self, request, override_id: int):
        return Response(OverrideOut(self._override(override_id)).data)

    @extend_schema(responses={204: None}, operation_id="overrides_delete")
    def delete(self, request, override_id: int):
        services.override_delete(override=self._override(override_id), **self.who())
        return Response(status=status.HTTP_204_NO_CONTENT)
