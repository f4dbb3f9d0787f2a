"""factory_boy factories for the domain models. Every write goes through a change context, as
it must for a tracked model: the rows they make carry the reason "Test data" in history."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone
from factory.django import DjangoModelFactory

from catalog.models import Entitlement, Feature, Item, Tag
from segments.models import Condition, Segment, SegmentMember, TargetingRule
from subscriptions.models import Customer, Override, Subscription, SubscriptionAddon, TopUp
from toolkit.change_context import change_context

TEST_REASON = "Test data"


def _audited():
    return change_context(actor=None, reason=TEST_REASON, source="shell")


class AuditedFactory(DjangoModelFactory):
    """Creates (and sets many-to-many relations) inside a change context."""

    class Meta:
        abstract = True
        skip_postgeneration_save = True  # the hooks save what they change, audited

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with _audited():
            return super()._create(model_class, *args, **kwargs)


def _set_many(field: str):
    """A post-generation hook setting a many-to-many relation, audited like the create."""

    def hook(obj, create, extracted, **kwargs):
        if create and extracted is not None:
            with _audited():
                getattr(obj, field).set(extracted)

    return factory.PostGeneration(hook)


class TagFactory(AuditedFactory):
    class Meta:
        model = Tag
        django_get_or_create = ["key"]

    key = factory.Sequence(lambda n: f"tag-{n}")
    name = factory.LazyAttribute(lambda o: o.key.title())
    groups = _set_many("groups")


class FeatureFactory(AuditedFactory):
    """A switch by default; use the traits for the other kinds."""

    class Meta:
        model = Feature

    key = factory.Sequence(lambda n: f"feature-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").capitalize())
    kind = Feature.Kind.SWITCH
    tags = _set_many("tags")

    class Params:
        quantity = factory.Trait(kind=Feature.Kind.QUANTITY, levels=[5, 10, 25, 50])
        range = factory.Trait(kind=Feature.Kind.RANGE, min_value=100, max_value=1000)
        custom = factory.Trait(kind=Feature.Kind.CUSTOM, levels=["email", "email+chat", "email+chat+sla"])
        metered = factory.Trait(
            kind=Feature.Kind.METERED, period="month", period_anchor="calendar", limit_type="hard"
        )


class ItemFactory(AuditedFactory):
    """An active plan by default."""

    class Meta:
        model = Item

    key = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").capitalize())
    kind = Item.Kind.PLAN
    rank = 10
    grace_days = 7

    class Params:
        addon = factory.Trait(kind=Item.Kind.ADDON, key=factory.Sequence(lambda n: f"addon-{n}"), rank=0)
        legacy = factory.Trait(status=Item.Status.LEGACY)


class EntitlementFactory(AuditedFactory):
    class Meta:
        model = Entitlement

    item = factory.SubFactory(ItemFactory)
    feature = factory.SubFactory(FeatureFactory)
    value = True


class CustomerFactory(AuditedFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"customer-{n}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    country = "GB"


class SubscriptionFactory(AuditedFactory):
    class Meta:
        model = Subscription

    external_id = factory.Sequence(lambda n: f"sub-{n}")
    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(ItemFactory)
    status = Subscription.Status.ACTIVE
    current_period_end = factory.LazyFunction(lambda: timezone.now() + timedelta(days=20))


class SubscriptionAddonFactory(AuditedFactory):
    class Meta:
        model = SubscriptionAddon

    subscription = factory.SubFactory(SubscriptionFactory)
    addon = factory.SubFactory(ItemFactory, addon=True)
    quantity = 1


class OverrideFactory(AuditedFactory):
    """A grant of a switch, live from yesterday to tomorrow."""

    class Meta:
        model = Override

    subscription = factory.SubFactory(SubscriptionFactory)
    feature = factory.SubFactory(FeatureFactory)
    effect = Override.Effect.GRANT
    value = True
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class TopUpFactory(AuditedFactory):
    """100 more of a metered feature for this calendar month."""

    class Meta:
        model = TopUp

    customer = factory.SubFactory(CustomerFactory)
    feature = factory.SubFactory(FeatureFactory, metered=True)
    period_start = factory.LazyFunction(
        lambda: timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    amount = 100


class SegmentFactory(AuditedFactory):
    class Meta:
        model = Segment

    key = factory.Sequence(lambda n: f"segment-{n}")
    name = factory.Sequence(lambda n: f"Segment {n}")
    tags = _set_many("tags")


class SegmentMemberFactory(AuditedFactory):
    class Meta:
        model = SegmentMember

    segment = factory.SubFactory(SegmentFactory)
    customer = factory.SubFactory(CustomerFactory)
    kind = SegmentMember.Kind.INCLUDED


class ConditionFactory(AuditedFactory):
    class Meta:
        model = Condition

    segment = factory.SubFactory(SegmentFactory)
    rule = 1
    attribute = "plan_rank"
    op = "gte"
    value = 10


class TargetingRuleFactory(AuditedFactory):
    class Meta:
        model = TargetingRule

    feature = factory.SubFactory(FeatureFactory)
    segment = factory.SubFactory(SegmentFactory)
    position = 1
    value = True


class UserFactory(DjangoModelFactory):
    """A member of staff; `groups=["Sales"]` puts them in roles by name (the groups exist
    from migration catalog 0002). Users are not tracked models."""

    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True  # the password is hashed before the insert; groups need no save

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@entitle.example")
    is_staff = True
    password = factory.django.Password("test-password")

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create and extracted:
            with change_context(actor=None, reason="Test data: roles", source="shell"):
                obj.groups.set(g if isinstance(g, Group) else Group.objects.get(name=g) for g in extracted)


class SuperuserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin-{n}")
    is_superuser = True
