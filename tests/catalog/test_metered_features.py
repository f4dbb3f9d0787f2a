"""Metered features on the catalog's side: the rules their definition and their limits keep
(through the services), the feature's and the plan's admin pages (test client), and their
import and export columns."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from catalog import services
from catalog.models import Entitlement, Feature, Item
from tests import factories as f
from tests.admin_pages import post_form, text
from tests.audit.imports.conftest import export_bytes, import_text
from tests.audit_trail import history_rows
from toolkit.change_context import change_context

pytestmark = pytest.mark.django_db

WHO = {"actor": None, "reason": "Ticket CAT-12: usage pricing", "source": "shell"}
REASON = "Ticket CAT-12: usage pricing"
METERING = {"period": "month", "period_anchor": "calendar", "limit_type": "hard"}


def metered(key: str = "api-credits", **fields) -> Feature:
    """A metered feature, not saved."""
    return Feature(key=key, name=key.replace("-", " ").capitalize(), kind="metered", **{**METERING, **fields})


@pytest.fixture
def catalogue(db):
    with change_context(actor=None, reason="Test data", source="shell"):
        return SimpleNamespace(
            plan=f.ItemFactory(key="pro"),
            credits=f.FeatureFactory(key="api-credits", kind="metered", **METERING),
            tokens=f.FeatureFactory(
                key="ai-tokens",
                kind="metered",
                period="day",
                period_anchor="billing_cycle",
                limit_type="soft",
                allow_unlimited=True,
            ),
            seats=f.FeatureFactory(key="seats", quantity=True),
        )


# --- the definition ------------------------------------------------------------------------------


def test_feature_save__metered_with_its_period_anchor_and_limit_type__saved_with_history():
    rows = history_rows()

    services.feature_save(feature=metered(allow_unlimited=True), **WHO)

    stored = Feature.objects.get(key="api-credits")
    assert (stored.kind, stored.period, stored.period_anchor, stored.limit_type, stored.allow_unlimited) == (
        "metered",
        "month",
        "calendar",
        "hard",
        True,
    )
    assert stored.history.get().history_change_reason == WHO["reason"]
    assert history_rows() == rows + 2  # its history row and the audit log's mirror


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("period", "A metered feature needs its period."),
        ("period_anchor", "A metered feature needs its period anchor."),
        ("limit_type", "A metered feature needs its limit type."),
    ],
)
def test_feature_save__metered_missing_one_of_its_three__refused_naming_it_and_nothing_saved(
    missing, message
):
    rows = history_rows()

    with pytest.raises(ValidationError) as error:
        services.feature_save(feature=metered(**{missing: ""}), **WHO)

    assert error.value.message_dict == {missing: [message]}
    assert not Feature.objects.filter(key="api-credits").exists()
    assert history_rows() == rows


@pytest.mark.parametrize(
    ("field", "value"),
    [("period", "fortnight"), ("period_anchor", "lunar"), ("limit_type", "strict"), ("period", "Month")],
)
def test_feature_save__metered_with_an_unknown_choice__refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as error:
        services.feature_save(feature=metered(**{field: value}), **WHO)

    assert list(error.value.message_dict) == [field]
    assert f"Value '{value}' is not a valid choice." in error.value.message_dict[field]
    assert not Feature.objects.filter(key="api-credits").exists()


def test_feature_save__metered_with_levels_or_bounds__refused():
    with pytest.raises(ValidationError) as error:
        services.feature_save(feature=metered(levels=[5, 10], min_value=1, max_value=5), **WHO)

    assert error.value.message_dict == {
        "levels": ["A metered feature has no levels."],
        "min_value": ["Only range features have a minimum and maximum."],
    }


def test_feature_save__switch_given_a_period__saved_without_one():
    services.feature_save(feature=Feature(key="sso", name="SSO", kind="switch", **METERING), **WHO)

    stored = Feature.objects.get(key="sso")
    assert (stored.period, stored.period_anchor, stored.limit_type) == ("", "", "")


def test_feature_save__metered_changed_to_a_quantity__its_metering_cleared(catalogue):
    feature = Feature.objects.get(key="api-credits")
    feature.kind, feature.levels = "quantity", [100, 1000]

    services.feature_save(feature=feature, **WHO)

    stored = Feature.objects.get(key="api-credits")
    assert (stored.kind, stored.levels, stored.period, stored.period_anchor, stored.limit_type) == (
        "quantity",
        [100, 1000],
        "",
        "",
        "",
    )


# --- limits: entitlement values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [(0, 0), (5000, 5000), ("5000", 5000), (" 12 ", 12), (2_147_483_647, 2_147_483_647), (7.0, 7)],
)
def test_entitlement_put__metered_limit__stored_as_a_whole_number(catalogue, value, stored):
    entitlement, created = services.entitlement_put(
        item_key="pro", feature_key="api-credits", value=value, **WHO
    )

    assert created
    assert Entitlement.objects.get(pk=entitlement.pk).value == stored


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "-1 is below zero: give a whole number, 0 or more."),
        (2_147_483_648, "2147483648 is too large: at most 2,147,483,647 may be granted."),
        ("many", "“many” is not a whole number: give a whole number, 0 or more."),
        (2.5, "2.5 is not a whole number: give a whole number, 0 or more."),
        (True, "on is not a whole number: give a whole number, 0 or more."),
        ("unlimited", "api-credits does not allow unlimited: give a whole number."),
    ],
)
def test_entitlement_put__metered_value_that_is_no_limit__refused_and_nothing_saved(
    catalogue, value, message
):
    rows = history_rows()

    with pytest.raises(ValidationError) as error:
        services.entitlement_put(item_key="pro", feature_key="api-credits", value=value, **WHO)

    assert error.value.message_dict == {"value": [message]}
    assert not Entitlement.objects.filter(item=catalogue.plan).exists()
    assert history_rows() == rows


def test_entitlement_put__unlimited_where_the_feature_allows_it__stored(catalogue):
    services.entitlement_put(item_key="pro", feature_key="ai-tokens", value="Unlimited", **WHO)

    assert Entitlement.objects.get(item=catalogue.plan, feature=catalogue.tokens).value == "unlimited"


# --- the feature's admin page --------------------------------------------------------------------


def feature_form(**fields) -> dict[str, object]:
    return {
        "key": "api-credits",
        "name": "API credits",
        "kind": "metered",
        "status": "active",
        "fallback": "deny",
        "change_reason": REASON,
        **fields,
    }


def test_feature_add_page__offers_metered_and_its_three_choices_in_their_own_section(client, superuser):
    response = client.get(reverse("admin:catalog_feature_add"))

    page = text(response)
    assert '<option value="metered">Metered (a usage limit per period)</option>' in page
    sections = {fieldset.name: list(fieldset.fields) for fieldset in response.context["adminform"]}
    assert sections["Metering"] == ["period", "period_anchor", "limit_type"]
    assert "Metered features only: a plan's value is then its usage limit per period." in page
    for field, choices in [
        ("period", ["", "day", "week", "month", "year"]),
        ("period_anchor", ["", "calendar", "billing_cycle"]),
        ("limit_type", ["", "hard", "soft"]),
    ]:
        select = re.search(rf'<select name="{field}"[^>]*id="id_{field}".*?</select>', page, re.S)
        assert select, field
        assert re.findall(r'<option value="([^"]*)"', select.group(0)) == choices
    assert "how long usage counts before it starts again from zero" in page
    assert "Hard: consumption beyond the limit is refused" in page


def test_feature_add__metered_with_its_choices__saved_with_reason_from_the_admin(client, superuser):
    response = post_form(
        client,
        reverse("admin:catalog_feature_add"),
        feature_form(period="week", period_anchor="billing_cycle", limit_type="soft", allow_unlimited="on"),
    )

    assert response.status_code == 302
    stored = Feature.objects.get(key="api-credits")
    assert (stored.kind, stored.period, stored.period_anchor, stored.limit_type, stored.allow_unlimited) == (
        "metered",
        "week",
        "billing_cycle",
        "soft",
        True,
    )
    row = stored.history.get()
    assert (row.history_change_reason, row.history_user, row.source) == (REASON, superuser, "admin")


def test_feature_add__metered_without_its_choices__each_missing_one_named_and_nothing_saved(
    client, superuser
):
    rows = history_rows()

    response = post_form(client, reverse("admin:catalog_feature_add"), feature_form())

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "period": ["A metered feature needs its period."],
        "period_anchor": ["A metered feature needs its period anchor."],
        "limit_type": ["A metered feature needs its limit type."],
    }
    page = text(response)
    assert "A metered feature needs its period anchor." in page
    assert not Feature.objects.filter(key="api-credits").exists()
    assert history_rows() == rows


def test_feature_change__metered_to_switch__its_metering_cleared(client, superuser, catalogue):
    url = reverse("admin:catalog_feature_change", args=[catalogue.credits.pk])

    response = post_form(client, url, feature_form(kind="switch", **METERING))

    assert response.status_code == 302
    stored = Feature.objects.get(key="api-credits")
    assert (stored.kind, stored.period, stored.period_anchor, stored.limit_type) == ("switch", "", "", "")


def test_feature_change__period_scheduled__the_sweep_applies_it_through_the_api_write(
    client, superuser, catalogue
):
    from audit.models import ScheduledChange
    from audit.scheduling import sweep_due_changes

    url = reverse("admin:catalog_feature_change", args=[catalogue.credits.pk])
    when = timezone.now() + timedelta(days=1)

    response = post_form(
        client,
        url,
        feature_form(
            **{**METERING, "period": "year"},
            name=catalogue.credits.name,
            schedule_for_0=when.strftime("%Y-%m-%d"),
            schedule_for_1="09:00",
        ),
    )

    assert response.status_code == 302
    change = ScheduledChange.objects.get()
    assert change.body == {"period": "year"}
    assert Feature.objects.get(key="api-credits").period == "month"
    sweep_due_changes(now=change.effective_at + timedelta(minutes=1))
    change.refresh_from_db()
    assert change.status == ScheduledChange.Status.APPLIED, change.error
    assert Feature.objects.get(key="api-credits").period == "year"


def test_feature_changelist__filtered_by_kind_metered__lists_only_metered_features(
    client, superuser, catalogue
):
    everything = client.get(reverse("admin:catalog_feature_changelist"))
    response = client.get(reverse("admin:catalog_feature_changelist") + "?kind__exact=metered")

    assert "?kind__exact=metered" in text(everything)  # offered in the kind filter
    assert [feature.key for feature in response.context["cl"].result_list] == ["ai-tokens", "api-credits"]


def test_feature_change_page__product_sees_the_metering_read_only(client, demo):
    product = User.objects.get(username="product")
    client.force_login(product)
    feature = Feature.objects.get(key="api-calls")

    response = client.get(reverse("admin:catalog_feature_change", args=[feature.pk]))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert not {"period", "period_anchor", "limit_type"} & set(form.fields)
    assert "The subscription's billing cycle" in text(response)


# --- limits on the plan's page -------------------------------------------------------------------


def plan_form(feature: Feature, value: str) -> dict[str, object]:
    return {
        "key": "scale",
        "kind": "plan",
        "name": "Scale",
        "status": "active",
        "rank": 40,
        "grace_days": 14,
        "change_reason": REASON,
        "entitlements-TOTAL_FORMS": 1,
        "entitlements-0-feature": feature.pk,
        "entitlements-0-value": value,
    }


@pytest.mark.parametrize(
    ("feature", "value", "stored"), [("credits", "5000", 5000), ("tokens", "unlimited", "unlimited")]
)
def test_item_add__metered_limit_in_the_inline__saved(client, superuser, catalogue, feature, value, stored):
    response = post_form(
        client, reverse("admin:catalog_item_add"), plan_form(getattr(catalogue, feature), value)
    )

    assert response.status_code == 302
    item = Item.objects.get(key="scale")
    assert [(e.feature.key, e.value) for e in item.entitlements.all()] == [
        (getattr(catalogue, feature).key, stored)
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "api-credits's limit per period: a whole number, 0 or more."),
        ("unlimited", "api-credits does not allow unlimited: give a whole number."),
        ("5,000", "“5,000” is not a whole number: give a whole number, 0 or more."),
        ("-3", "-3 is below zero: give a whole number, 0 or more."),
        ("99999999999", "99999999999 is too large: at most 2,147,483,647 may be granted."),
    ],
)
def test_item_add__metered_limit_that_does_not_fit__error_shown_and_nothing_saved(
    client, superuser, catalogue, value, message
):
    rows = history_rows()

    response = post_form(client, reverse("admin:catalog_item_add"), plan_form(catalogue.credits, value))

    assert response.status_code == 200
    assert message in text(response)
    assert not Item.objects.filter(key="scale").exists()
    assert history_rows() == rows


def test_item_change_page__the_value_column_says_what_a_metered_limit_is(client, superuser, catalogue):
    response = client.get(reverse("admin:catalog_item_change", args=[catalogue.plan.pk]))

    assert "for a metered feature, its limit per period (a whole number, or unlimited where allowed)" in text(
        response
    )


def test_entitlement_changelist__a_limit_reads_with_its_period(client, superuser, catalogue):
    with change_context(actor=None, reason="Test data", source="shell"):
        f.EntitlementFactory(item=catalogue.plan, feature=catalogue.credits, value=10_000)
        f.EntitlementFactory(item=catalogue.plan, feature=catalogue.tokens, value="unlimited")
        f.EntitlementFactory(item=catalogue.plan, feature=catalogue.seats, value=10)

    response = client.get(reverse("admin:catalog_entitlement_changelist"))

    page = text(response)
    assert re.search(r">\s*10,000 per month\s*<", page)
    assert re.search(r">\s*unlimited\s*<", page)
    assert re.search(r">\s*10\s*<", page)  # a quantity's level reads as it is


# --- import and export ---------------------------------------------------------------------------


def test_feature_export__metered_columns__filled_for_metered_features_only(catalogue):
    rows = {row["key"]: row for row in csv.DictReader(io.StringIO(export_bytes("features").decode()))}

    pick = ("kind", "period", "period_anchor", "limit_type", "allow_unlimited")
    assert [rows["ai-tokens"][column] for column in pick] == [
        "metered",
        "day",
        "billing_cycle",
        "soft",
        "true",
    ]
    assert [rows["seats"][column] for column in pick] == ["quantity", "", "", "", "false"]


def test_feature_import__a_new_metered_feature_and_a_changed_period__applied(demo):
    catalog = User.objects.get(username="catalog")

    result = import_text(
        "features",
        """
        key,name,kind,period,period_anchor,limit_type,allow_unlimited
        api-credits,API credits,metered,week,calendar,soft,true
        api-calls,API calls,metered,day,billing_cycle,hard,false
        """,
        user=catalog,
        apply=True,
    )

    assert result.applied, [row.reasons for row in result.refused]
    assert result.summary == "1 created, 1 changed, 0 removed, 0 unchanged, 0 refused"
    credits = Feature.objects.get(key="api-credits")
    assert (credits.kind, credits.period, credits.period_anchor, credits.limit_type) == (
        "metered",
        "week",
        "calendar",
        "soft",
    )
    assert credits.allow_unlimited
    assert Feature.objects.get(key="api-calls").period == "day"


def test_feature_import__metered_without_a_period_or_with_an_unknown_one__rows_refused(demo):
    catalog = User.objects.get(username="catalog")
    rows = history_rows()

    result = import_text(
        "features",
        """
        key,name,kind,period,period_anchor,limit_type
        api-credits,API credits,metered,,calendar,hard
        api-calls,API calls,metered,fortnight,billing_cycle,hard
        """,
        user=catalog,
        apply=True,
    )

    assert not result.applied
    assert [(row.line, row.reasons) for row in result.refused] == [
        (2, ["period: A metered feature needs its period."]),
        (3, ["period: Value 'fortnight' is not a valid choice."]),
    ]
    assert not Feature.objects.filter(key="api-credits").exists()
    assert Feature.objects.get(key="api-calls").period == "month"
    assert history_rows() == rows


def test_feature_export_then_import__unchanged(demo):
    catalog = User.objects.get(username="catalog")
    exported = export_bytes("features").decode()
    rows = history_rows()

    result = import_text("features", exported, user=catalog, apply=True)

    assert result.refused == []
    assert "0 created, 0 changed" in result.summary
    assert history_rows() == rows
