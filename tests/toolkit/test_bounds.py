"""Values that would break every later read of their row are refused on every write path: the
models' validators hold them for the admin, imports and scheduled changes as the API does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from audit.scheduling import schedule_change
from segments import services as segment_services
from segments.models import Condition
from tests import factories
from toolkit.bounds import out_of_range_number, refuse_far_date, refuse_huge_numbers


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"n": 2**63}, "n"),
        ({"a": [1, {"b": -(2**63) - 1}]}, "a[1].b"),
        ([1e300], "[0]"),
        ({"n": 2**63 - 1, "m": -(2**63), "ok": True, "f": 1.5}, None),
    ],
)
def test_out_of_range_number__finds_the_first_number_beyond_64_bits(value, where):
    assert out_of_range_number(value) == where


def test_refuse_far_date__from_year_9000__refused_before_it__kept():
    refuse_far_date(datetime(8999, 12, 31, 23, 59, tzinfo=UTC))
    refuse_far_date(None)
    with pytest.raises(ValidationError, match="before 9000-01-01"):
        refuse_far_date(datetime(9000, 1, 1, tzinfo=UTC))


def test_refuse_huge_numbers__names_where():
    with pytest.raises(ValidationError, match=r"at traits\.n is too large"):
        refuse_huge_numbers({"traits": {"n": 18446744073709551616}})


@pytest.mark.django_db
def test_segment_condition__number_beyond_64_bits__refused_and_nothing_saved():
    segment = factories.SegmentFactory()
    condition = Condition(segment=segment, attribute="traits.seats", op="gte", value=18446744073709551616)

    with pytest.raises(ValidationError):
        segment_services.segment_part_save(part=condition, actor=None, reason="Test", source="shell")

    assert not Condition.objects.filter(segment=segment).exists()


@pytest.mark.django_db
def test_scheduled_change__in_year_9999__refused():
    admin = factories.SuperuserFactory()

    with pytest.raises(ValidationError, match="before 9000-01-01"):
        schedule_change(
            method="PATCH",
            path="/api/v1/customers/acme",
            body={"name": "Later"},
            effective_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
            actor=admin,
            reason="Far future",
            source="shell",
        )


@pytest.mark.django_db
def test_subscription__date_in_year_9999__refused_by_the_service(audited):
    from subscriptions import services as subscription_services

    subscription = factories.SubscriptionFactory()
    subscription.trial_ends_at = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)

    with pytest.raises(ValidationError, match="before 9000-01-01"):
        subscription_services.subscription_save(
            subscription=subscription, actor=None, reason="t", source="shell"
        )


@pytest.mark.django_db
def test_customer__trait_beyond_64_bits__refused_by_the_service():
    from subscriptions import services as subscription_services
    from subscriptions.models import Customer

    customer = Customer(external_id="huge", name="Huge", traits={"n": 18446744073709551616})

    with pytest.raises(ValidationError, match="too large"):
        subscription_services.customer_save(customer=customer, actor=None, reason="t", source="shell")
    assert not Customer.objects.filter(external_id="huge").exists()
