"""The permission matrix (docs/permissions.md): every role × kind of object × admin path. Allowed
means the change is saved; denied means a 403 or a read-only page — never a 500 and never a
silent success — including forged requests for objects by id."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from catalog.models import Entitlement, Feature, Item
from segments.models import Segment, TargetingRule
from subscriptions.models import Customer, Override, Subscription
from tests.formdata import form_data

ROLES = ["sales", "support", "product", "catalog"]
REASON = {"change_reason": "Permission matrix test"}


def _url(obj, view="change"):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def _client(client, role):
    client.force_login(User.objects.get(username=role))
    return client


def _edit(client, obj, change: dict):
    """GET the change page; if it is editable, post it back with `change` applied. Returns
    (status of the GET, status of the POST or None when the page was read-only)."""
    page = client.get(_url(obj))
    if page.status_code != 200:
        return page.status_code, None
    html = page.content.decode()
    if 'name="change_reason"' not in html:
        # Read-only page: a forged post must be refused too.
        forged = client.post(_url(obj), {**change, **REASON})
        return 200, forged.status_code
    data = {**form_data(html, f"{obj._meta.model_name}_form"), **change, **REASON}
    return 200, client.post(_url(obj), data).status_code


# (object, field changed, new value) → roles allowed to make the change
CHANGES = {
    "feature tagged sales": (lambda: Feature.objects.get(key="max-members"), "name", "Members", {"catalog"}),
    "feature tagged support": (lambda: Feature.objects.get(key="4k-streaming"), "name", "4K", {"catalog"}),
    "feature tagged product": (
        lambda: Feature.objects.get(key="change-request-version"),
        "name",
        "CR version",
        {"catalog"},
    ),
    "untagged feature": (lambda: Feature.objects.get(key="data-export"), "name", "Export", {"catalog"}),
    "plan": (lambda: Item.objects.get(key="business"), "name", "Business+", {"catalog"}),
    "segment tagged product": (lambda: Segment.objects.get(key="beta"), "name", "Beta testers", {"product"}),
    "untagged segment": (lambda: Segment.objects.get(key="basic-or-higher"), "name", "Basic+", set()),
    "customer": (lambda: Customer.objects.get(external_id="acme"), "name", "Acme Inc", {"sales"}),
    "subscription": (lambda: Subscription.objects.get(external_id="sub-acme"), "status", "paused", {"sales"}),
    "support override": (
        lambda: Override.objects.get(feature__key="4k-streaming"),
        "valid_until_1",
        "23:59:00",  # the demo ends overrides on the hour: this is always a change
        {"support"},
    ),
}


# Pages a role may save for one part while another part is read-only to it: Product saves the
# targeting rules of its features, never their definition (the name posted is ignored).
SAVES_ONLY_ANOTHER_PART = {("feature tagged product", "product")}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CHANGES, ids=str)
def test_admin_change__role_and_object__allowed_or_refused(demo, client, role, case):
    get_obj, field, value, allowed = CHANGES[case]
    obj = get_obj()
    history_before = obj.history.count()
    get_status, post_status = _edit(_client(client, role), obj, {field: value})
    assert get_status == 200  # every role may see every object (Support and Product "read everything else")
    if role in allowed:
        assert post_status == 302, f"{role} should change {case}"
        assert obj.history.count() == history_before + 1
    elif (case, role) in SAVES_ONLY_ANOTHER_PART:
        assert post_status == 302
        assert getattr(type(obj).objects.get(pk=obj.pk), field) == getattr(obj, field)
        assert obj.history.count() == history_before
    else:
        assert post_status == 403, f"{role} must not change {case}"
        assert obj.history.count() == history_before


GRANTS = {
    # feature key, subscription → roles allowed to add an override
    "4k-streaming": ("sub-cinephile", {"support"}),
    "max-members": ("sub-acme", {"sales"}),
    "data-export": ("sub-acme", set()),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("feature_key", GRANTS)
def test_admin_override_add__forged_for_any_feature__only_taggged_roles_succeed(
    demo, client, role, feature_key
):
    subscription_id, allowed = GRANTS[feature_key]
    feature = Feature.objects.get(key=feature_key)
    subscription = Subscription.objects.get(external_id=subscription_id)
    before = Override.objects.count()
    response = _client(client, role).post(
        reverse("admin:subscriptions_override_add"),
        {"subscription": subscription.pk, "feature": feature.pk, "effect": "revoke", "value": "", **REASON},
    )
    if role in allowed:
        assert response.status_code == 302
        assert Override.objects.count() == before + 1
    else:
        assert response.status_code in (200, 403)
        if response.status_code == 200:  # the form refuses the feature as not a valid choice
            assert "Select a valid choice" in response.content.decode()
        assert Override.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_override_delete__by_id__only_the_granting_role(demo, client, role):
    override = Override.objects.get(feature__key="4k-streaming")
    response = _client(client, role).post(_url(override, "delete"), {"post": "yes", **REASON})
    if role == "support":
        assert response.status_code == 302
        assert not Override.objects.filter(pk=override.pk).exists()
    else:
        assert response.status_code == 403
        assert Override.objects.filter(pk=override.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_list_action__end_override__only_the_granting_role(demo, client, role):
    override = Override.objects.get(feature__key="4k-streaming")
    until = override.valid_until
    response = _client(client, role).post(
        reverse("admin:subscriptions_override_changelist"),
        {"action": "end_now", "_selected_action": [override.pk], "apply_reason": "1", **REASON},
    )
    override.refresh_from_db()
    if role == "support":
        assert response.status_code == 302
        assert override.valid_until < until
    else:
        assert response.status_code in (200, 403)
        assert override.valid_until == until


EXPECTED_AUTOCOMPLETE = {
    "sales": {"max-members"},
    "support": {"4k-streaming", "support-level", "api-calls", "ai-tokens"},
    "product": set(),
    "catalog": set(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_autocomplete__override_feature__offers_only_grantable_features(demo, client, role):
    response = _client(client, role).get(
        "/admin/autocomplete/",
        {"app_label": "subscriptions", "model_name": "override", "field_name": "feature", "term": ""},
    )
    if EXPECTED_AUTOCOMPLETE[role]:
        assert response.status_code == 200
        assert {r["text"] for r in response.json()["results"]} == EXPECTED_AUTOCOMPLETE[role]
    else:  # roles that may not add overrides at all
        assert response.status_code in (200, 403)
        if response.status_code == 200:
            assert response.json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_inline__targeting_rule_on_product_feature__product_and_catalog_only(demo, client, role):
    feature = Feature.objects.get(key="change-request-version")
    rule = TargetingRule.objects.get(feature=feature)
    _client(client, role)
    page = client.get(_url(feature))
    html = page.content.decode()
    data = form_data(html, "feature_form")
    data.update({"rules-0-value": "v1", **REASON})
    response = client.post(_url(feature), data)
    rule.refresh_from_db()
    if role in ("product", "catalog"):
        assert response.status_code == 302
        assert rule.value == "v1"
    else:
        assert response.status_code == 403
        assert rule.value == "v2"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_entitlement_add__catalog_admins_only(demo, client, role):
    item, feature = Item.objects.get(key="starter"), Feature.objects.get(key="data-export")
    response = _client(client, role).post(
        reverse("admin:catalog_entitlement_add"),
        {"item": item.pk, "feature": feature.pk, "value": "on", **REASON},
    )
    created = Entitlement.objects.filter(item=item, feature=feature).exists()
    assert created == (role == "catalog")
    assert response.status_code == (302 if role == "catalog" else 403)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_object_permission_pages__catalog_admins_only(demo, client, role):
    response = _client(client, role).get(reverse("admin:catalog_featuregrouppermission_changelist"))
    assert response.status_code == (200 if role == "catalog" else 403)


@pytest.mark.django_db
def test_tags__untag_a_feature__withdraws_the_group_permission(demo):
    from catalog import services
    from catalog.permissions import can_grant_feature

    support = User.objects.get(username="support")
    feature = Feature.objects.get(key="4k-streaming")
    assert can_grant_feature(support, feature)
    services.feature_save(
        feature=feature,
        tags=[],
        actor=User.objects.get(username="catalog"),
        reason="Support no longer owns 4K",
        source="shell",
    )
    support = User.objects.get(username="support")  # a fresh user object: permission caches are per object
    assert not can_grant_feature(support, feature)


@pytest.mark.django_db
def test_tags__product_user_retagging__refused(demo):
    from django.core.exceptions import PermissionDenied

    from catalog import services
    from catalog.models import Tag

    product = User.objects.get(username="product")
    feature = Feature.objects.get(key="change-request-version")
    with pytest.raises(PermissionDenied):
        services.feature_save(
            feature=feature,
            tags=list(Tag.objects.all()),
            actor=product,
            reason="I want them all",
            source="shell",
        )
