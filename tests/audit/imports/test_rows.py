"""What each row of an import does, kind by kind: the same validation and permissions as a
form or an API write, old → new in the preview, all rows or none when applied."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import openpyxl
import pytest
from django.contrib.auth.models import User

from audit.models import AuditEntry
from catalog.models import Entitlement, Feature, Item
from segments.models import SegmentMember
from subscriptions.models import Customer, Override, Subscription
from tests.audit.imports.conftest import REASON, XLSX, import_bytes, import_text, value_of
from tests.audit.imports.test_scale import entitlements_csv, make_catalog

pytestmark = pytest.mark.django_db


# --- all or nothing ------------------------------------------------------------------------------


def test_import__one_bad_row_among_1000__applies_nothing_and_names_the_line_and_why(catalog_user):
    feature_keys, item_keys = make_catalog(100, 10)
    lines = entitlements_csv(item_keys, feature_keys).decode().splitlines()
    bad = lines[699].split(",")
    lines[699] = f"{bad[0]},{bad[1]},maybe"  # the file's line 700
    before = AuditEntry.objects.count()

    result = import_bytes("entitlements", "\n".join(lines).encode(), user=catalog_user, apply=True)

    assert not result.applied
    assert [(row.line, row.label, row.reasons) for row in result.refused] == [
        (700, f"{bad[0]} / {bad[1]}", [f"value: {bad[1]} is a switch: its value can only be true."])
    ]
    assert result.counts["created"] == 999
    assert not Entitlement.objects.filter(item__key__in=item_keys).exists()
    assert AuditEntry.objects.count() == before


def test_import__applied__records_each_change_with_the_reason_source_and_one_request_id(catalog_user):
    result = import_text(
        "entitlements",
        """
        item,feature,value
        business,max-members,50
        starter,4k-streaming,true
        basic,support-level,email
        """,
        user=catalog_user,
        apply=True,
    )

    assert result.applied and result.summary == "1 created, 1 changed, 0 removed, 1 unchanged, 0 refused"
    entries = AuditEntry.objects.filter(request_id=result.request_id)
    assert sorted((e.object_repr, e.action) for e in entries) == [
        ("business → max-members", "~"),
        ("starter → 4k-streaming", "+"),
    ]
    assert {(e.reason, e.source, e.user_id) for e in entries} == {(REASON, "import", catalog_user.pk)}
    change = entries.get(action="~").changes
    assert change == [{"field": "value", "old": 25, "new": 50}]


def test_import__preview__writes_nothing_and_shows_old_and_new(catalog_user):
    before = AuditEntry.objects.count()

    result = import_text(
        "entitlements", "item,feature,value\nbusiness,max-members,unlimited", user=catalog_user
    )

    assert not result.applied
    assert [(row.line, row.status, row.changes) for row in result.changes] == [
        (2, "Change", [("value", "25", "unlimited")])
    ]
    assert value_of("business", "max-members") == 25
    assert AuditEntry.objects.count() == before


def test_import__apply_without_a_reason__is_refused_before_anything(catalog_user):
    from toolkit.change_context import ChangeReasonRequired

    with pytest.raises(ChangeReasonRequired):
        import_text(
            "entitlements",
            "item,feature,value\nbusiness,max-members,50",
            user=catalog_user,
            apply=True,
            reason=" ",
        )


# --- rows and files that are refused -------------------------------------------------------------


def test_import__rows_naming_the_same_object_twice__the_second_is_refused(catalog_user):
    result = import_text(
        "entitlements",
        "item,feature,value\nbusiness,max-members,50\nbusiness,max-members,10",
        user=catalog_user,
    )

    assert [(row.line, row.reasons) for row in result.refused] == [
        (3, ["Line 2 already names the same object: keep one of them."])
    ]


def test_import__unknown_keys__are_refused_with_the_column(catalog_user):
    result = import_text(
        "entitlements", "item,feature,value\nplatinum,max-members,50\nbusiness,seats,5", user=catalog_user
    )

    assert [row.reasons for row in result.refused] == [
        ["item: There is no item 'platinum'."],
        ["feature: There is no feature 'seats'."],
    ]


def test_import__a_file_without_a_key_column_or_with_an_unknown_one__is_refused_whole(catalog_user):
    result = import_text("entitlements", "item,value,colour\nbusiness,5,red", user=catalog_user)

    assert result.problems == [
        "Unknown column 'colour': the columns are item, feature, value, delete.",
        "The file needs a column 'feature'.",
    ]
    assert not result.is_clean and result.rows == []


def test_import__blank_lines_and_header_case__are_forgiven(catalog_user):
    result = import_text(
        "entitlements", "Item, Feature ,VALUE\n\nbusiness,max-members,50\n,,\n", user=catalog_user
    )

    assert result.is_clean and [row.line for row in result.changes] == [3]


def test_import__an_empty_value__refused_saying_what_would_fit(catalog_user):
    result = import_text("entitlements", "item,feature,value\nbusiness,max-members,", user=catalog_user)

    assert [row.reasons for row in result.refused] == [
        ["value: Choose a level of max-members: 5, 10, 25, 50, or unlimited."]
    ]


def test_import__a_delete_cell__removes_the_entitlement(catalog_user):
    result = import_text(
        "entitlements",
        "item,feature,value,delete\nbusiness,data-export,,true\nstarter,data-export,,yes\nbasic,support-level,email,",
        user=catalog_user,
        apply=True,
    )

    assert result.summary == "0 created, 0 changed, 1 removed, 2 unchanged, 0 refused"
    assert not Entitlement.objects.filter(item__key="business", feature__key="data-export").exists()
    assert AuditEntry.objects.get(request_id=result.request_id).action == "-"


def test_import__by_a_user_without_the_model_permission__every_changing_row_is_refused(product_user):
    result = import_text(
        "entitlements",
        "item,feature,value\nbusiness,max-members,50\nbasic,support-level,email",
        user=product_user,
    )

    assert [(row.line, row.reasons) for row in result.refused] == [(2, ["You may not change entitlements."])]
    assert result.counts["unchanged"] == 1  # nothing to write: no permission needed


# --- XLSX ----------------------------------------------------------------------------------------


def test_import__xlsx_with_numbers_booleans_and_dates__reads_them_as_typed(sales_user):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["external_id", "customer", "plan", "status", "trial_ends_at", "addons"])
    sheet.append(
        ["sub-new", "prospect", "starter", "trialing", datetime(2030, 1, 31, 12, 0), "extra-seats:3"]
    )
    data = io.BytesIO()
    book.save(data)

    result = import_bytes("subscriptions", data.getvalue(), user=sales_user, apply=True, file_format=XLSX)

    assert result.applied, result.refused and result.refused[0].reasons
    subscription = Subscription.objects.get(external_id="sub-new")
    assert subscription.trial_ends_at == datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
    assert [(a.addon.key, a.quantity) for a in subscription.addons.all()] == [("extra-seats", 3)]


# --- features and items ----------------------------------------------------------------------------


def test_import__features__only_the_columns_in_the_file_change(catalog_user):
    result = import_text(
        "features",
        """
        key,name
        max-members,Seats
        sso,Single sign-on
        """,
        user=catalog_user,
        apply=True,
    )

    assert result.applied
    feature = Feature.objects.get(key="max-members")
    assert (feature.name, feature.levels, feature.allow_unlimited) == ("Seats", [5, 10, 25, 50], True)
    assert Feature.objects.get(key="sso").kind == "switch"


def test_import__features__levels_and_markets_are_validated_as_on_the_form(catalog_user):
    result = import_text(
        "features",
        """
        key,name,kind,levels,markets
        seats,Seats,quantity,"20, 5, 10",de
        flavour,Flavour,custom,,
        """,
        user=catalog_user,
        apply=True,
    )

    assert [(row.line, row.reasons[0][:41]) for row in result.refused] == [
        (3, "levels: A custom feature needs its levels")
    ]
    preview = import_text(
        "features", 'key,name,kind,levels,markets\nseats,Seats,quantity,"20, 5, 10",de', user=catalog_user
    )
    assert ("levels", "", "5, 10, 20") in preview.changes[0].changes
    assert ("markets", "", "DE") in preview.changes[0].changes


def test_import__features__moving_tags_is_for_catalog_admins(product_user):
    result = import_text("features", 'key,tags\nchange-request-version,"product, sales"', user=product_user)
    unquoted = import_text("features", "key,tags\nchange-request-version,product, sales", user=product_user)

    assert [row.reasons for row in result.refused] == [["Only catalog admins may change tags."]]
    assert unquoted.problems == [
        "Line 2 has more cells than the first line names columns (a comma not in quotes?)."
    ]


def test_import__items__a_new_plan_and_a_changed_rank(catalog_user):
    result = import_text(
        "items",
        "key,kind,name,rank,grace_days\nbusiness,plan,Business,25,14\nteam,plan,Team,15,",
        user=catalog_user,
        apply=True,
    )

    assert result.summary == "1 created, 1 changed, 0 removed, 0 unchanged, 0 refused"
    assert Item.objects.get(key="business").rank == 25
    assert Item.objects.get(key="team").grace_days == 0


# --- customers, subscriptions, overrides -----------------------------------------------------------


def test_import__customers__traits_are_json_and_countries_are_checked(sales_user):
    result = import_text(
        "customers",
        """
        external_id,name,country,traits
        acme,Acme Corp,us,"{""industry"": ""media""}"
        newco,New Co,XX,
        badjson,Bad,DE,{industry
        """,
        user=sales_user,
        apply=False,
    )

    assert [row.line for row in result.changes] == [2]
    assert result.changes[0].changes == [("traits", "", '{"industry": "media"}')]
    assert [(row.line, row.reasons[0].split(":")[0]) for row in result.refused] == [
        (3, "country"),
        (4, "traits"),
    ]
    assert Customer.objects.get(external_id="acme").traits == {}


def test_import__subscriptions__a_subscription_stays_with_its_customer_and_legacy_plans_are_refused(
    sales_user,
):
    result = import_text(
        "subscriptions",
        """
        external_id,customer,plan,status
        sub-acme,globex,business,active
        sub-globex,globex,business-2024,active
        sub-new,prospect,business-2024,active
        """,
        user=sales_user,
    )

    assert [(row.line, row.reasons) for row in result.refused] == [
        (2, ["customer: A subscription stays with its customer."]),
        (3, ["plan: business-2024 is legacy: no new subscription may be put on it."]),
        (4, ["plan: business-2024 is legacy: no new subscription may be put on it."]),
    ]


def test_import__subscriptions__addons_are_set_as_listed(sales_user):
    result = import_text(
        "subscriptions",
        "external_id,addons\nsub-acme,extra-seats:5\nsub-globex,extra-seats",
        user=sales_user,
        apply=True,
    )

    assert result.applied
    assert [(row.label, row.changes) for row in result.changes] == [
        ("sub-acme", [("addons", "extra-seats:2", "extra-seats:5")]),
        ("sub-globex", [("addons", "", "extra-seats:1")]),
    ]
    acme = Subscription.objects.get(external_id="sub-acme")
    assert [(a.addon.key, a.quantity) for a in acme.addons.all()] == [("extra-seats", 5)]
    assert acme.status == "active"  # a column left out of the file is left as it was


def test_import__overrides__support_may_only_grant_features_tagged_for_support(support_user):
    result = import_text(
        "overrides",
        """
        subscription,feature,valid_from,effect,value,valid_until
        sub-streamfan,4k-streaming,2030-06-06,grant,true,2030-06-09
        sub-acme,max-members,2030-06-06,grant,50,
        sub-acme,support-level,,grant,email+chat,
        sub-cinephile,4k-streaming,,revoke,,
        """,
        user=support_user,
        apply=True,
    )

    assert not result.applied
    assert [(row.line, row.reasons) for row in result.refused] == [
        (3, ["You may not grant or revoke max-members."])
    ]
    assert [row.line for row in result.changes] == [2, 4, 5]
    assert not Override.objects.filter(subscription__external_id="sub-acme").exists()


def test_import__overrides__are_named_by_their_start_and_can_be_ended_or_removed(support_user):
    existing = Override.objects.get(subscription__external_id="sub-streamfan")
    start = existing.valid_from.astimezone(UTC).isoformat().replace("+00:00", "Z")

    result = import_text(
        "overrides",
        f"""
        subscription,feature,valid_from,effect,value,valid_until,delete
        sub-streamfan,4k-streaming,{start},grant,true,2030-01-01T00:00:00Z,
        sub-cinephile,4k-streaming,2030-01-01,revoke,,,
        sub-cinephile,4k-streaming,2031-01-01,revoke,,,true
        """,
        user=support_user,
        apply=True,
    )

    assert result.summary == "1 created, 1 changed, 0 removed, 1 unchanged, 0 refused"
    existing.refresh_from_db()
    assert existing.valid_until == datetime(2030, 1, 1, tzinfo=UTC)
    remove = import_text(
        "overrides",
        "subscription,feature,valid_from,delete\nsub-cinephile,4k-streaming,2030-01-01,true",
        user=support_user,
        apply=True,
    )
    assert remove.summary == "0 created, 0 changed, 1 removed, 0 unchanged, 0 refused"
    assert not Override.objects.filter(subscription__external_id="sub-cinephile").exists()


def test_import__overrides__a_revoke_with_a_value_and_an_overlap_are_refused(support_user):
    result = import_text(
        "overrides",
        """
        subscription,feature,valid_from,effect,value,valid_until
        sub-cinephile,4k-streaming,,revoke,true,
        sub-streamfan,4k-streaming,,grant,true,
        """,
        user=support_user,
    )

    reasons = [row.reasons[0] for row in result.refused]
    assert reasons[0] == "value: A revoke has no value: leave the cell empty."
    assert reasons[1].startswith("valid_from: This window overlaps override #")


def test_import__overrides__two_rows_overlapping_each_other__the_preview_refuses_the_second(support_user):
    text = """
        subscription,feature,valid_from,effect,value,valid_until
        sub-cinephile,4k-streaming,2030-01-01,grant,true,2030-03-01
        sub-cinephile,4k-streaming,2030-02-01,grant,true,2030-04-01
        """

    preview = import_text("overrides", text, user=support_user)
    applied = import_text("overrides", text, user=support_user, apply=True)

    for result in (preview, applied):
        assert [row.line for row in result.changes] == [2]
        assert [row.line for row in result.refused] == [3]
        assert result.refused[0].reasons[0].startswith("valid_from: This window overlaps override #")
    assert not applied.applied
    assert not Override.objects.filter(
        subscription__external_id="sub-cinephile", valid_from__year=2030
    ).exists()


# --- segment lists ---------------------------------------------------------------------------------


def test_import__segment_lists__product_edits_the_segments_tagged_for_product(product_user):
    result = import_text(
        "segment-lists",
        """
        segment,customer,list
        beta,globex,included
        beta,acme,excluded
        basic-or-higher,hooli,excluded
        """,
        user=product_user,
        apply=True,
    )

    assert not result.applied
    assert [(row.line, row.reasons) for row in result.refused] == [
        (4, ["You may not change the segment basic-or-higher."])
    ]
    assert [(row.line, row.status) for row in result.changes] == [(2, "Create"), (3, "Change")]
    assert not SegmentMember.objects.filter(customer__external_id="globex").exists()


def test_import__segment_lists__applied_and_removed(product_user):
    added = import_text(
        "segment-lists", "segment,customer,list\nbeta,globex,included", user=product_user, apply=True
    )
    removed = import_text(
        "segment-lists", "segment,customer,delete\nbeta,acme,true", user=product_user, apply=True
    )

    assert added.applied and removed.applied
    listed = SegmentMember.objects.filter(segment__key="beta").values_list("customer__external_id", flat=True)
    assert sorted(listed) == ["contoso", "globex"]
    assert (
        User.objects.get(username="product").pk
        == AuditEntry.objects.get(request_id=removed.request_id).user_id
    )
