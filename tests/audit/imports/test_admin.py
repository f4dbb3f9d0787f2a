"""Import and export in the admin, driven with the test client as the demo roles: upload,
preview, confirm with a reason (required), and the all-or-nothing apply; exports follow the
changelist's filters."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.imports.files import resource_for
from audit.models import AuditEntry
from catalog.models import Entitlement, Feature, Item
from subscriptions.models import Customer, Override
from tests.audit.imports.conftest import REASON, value_of
from tests.formdata import form_data

pytestmark = pytest.mark.django_db

CSV_FORMAT = "0"  # the import form's formats: CSV, XLSX

PRICES = (
    b"item,feature,value\nbusiness,max-members,50\nstarter,4k-streaming,true\nbasic,support-level,email\n"
)


def upload(client, url_name: str, content: bytes, *, resource: str = "0", name: str = "prices.csv"):
    return client.post(
        reverse(url_name),
        {"resource": resource, "format": CSV_FORMAT, "import_file": SimpleUploadedFile(name, content)},
    )


def confirm(client, url_name: str, preview, reason: str = REASON, **changes):
    data = {**form_data(preview.content.decode(), "import-confirm"), "change_reason": reason, **changes}
    return client.post(reverse(url_name), data)


def test_import_page__lists_the_columns_and_what_they_hold(client, catalog_user):
    client.force_login(catalog_user)

    page = client.get(reverse("admin:catalog_item_import"))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Entitlements (item → feature → value)" in text and "Plans, add-ons and charges" in text
    assert "a level or unlimited for a quantity" in text


def test_import__preview__shows_created_changed_unchanged_and_writes_nothing(client, catalog_user):
    client.force_login(catalog_user)
    entries = AuditEntry.objects.count()

    preview = upload(client, "admin:catalog_entitlement_import", PRICES)

    text = preview.content.decode()
    assert preview.status_code == 200
    assert "1 created, 1 changed, 0 removed, 1 unchanged, 0 refused" in text
    assert 'id="import-confirm"' in text
    changes = text[text.index('data-testid="import-changes"') :]
    assert "business → max-members" in changes and "25" in changes and "50" in changes
    assert value_of("business", "max-members") == 25
    assert not Entitlement.objects.filter(item__key="starter", feature__key="4k-streaming").exists()
    assert AuditEntry.objects.count() == entries


def test_import__confirmed_with_a_reason__applies_every_row_with_one_request_id(client, catalog_user):
    client.force_login(catalog_user)
    preview = upload(client, "admin:catalog_entitlement_import", PRICES)

    response = confirm(client, "admin:catalog_entitlement_process_import", preview)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:catalog_entitlement_changelist")
    assert value_of("business", "max-members") == 50
    assert value_of("starter", "4k-streaming") is True
    entries = AuditEntry.objects.filter(reason=REASON)
    assert entries.count() == 2  # the unchanged row records nothing
    assert {e.source for e in entries} == {"import"}
    assert {e.user for e in entries} == {catalog_user}
    assert len({e.request_id for e in entries}) == 1
    followed = client.get(response["Location"])
    assert "1 created, 1 changed" in followed.content.decode()
    assert f"request_id={entries.first().request_id}" in followed.content.decode()


def test_import__confirmed_without_a_reason__applies_nothing_and_asks_for_one(client, catalog_user):
    client.force_login(catalog_user)
    preview = upload(client, "admin:catalog_entitlement_import", PRICES)

    response = confirm(client, "admin:catalog_entitlement_process_import", preview, reason="   ")

    assert response.status_code == 200
    text = response.content.decode()
    assert "This field is required." in text
    assert 'id="import-confirm"' in text  # the preview again, to confirm with a reason
    assert value_of("business", "max-members") == 25


def test_import__with_a_refused_row__offers_no_confirmation(client, catalog_user):
    client.force_login(catalog_user)
    bad = PRICES + b"enterprise,max-members,7\n"

    preview = upload(client, "admin:catalog_entitlement_import", bad)

    text = preview.content.decode()
    assert 'id="import-confirm"' not in text
    refused = text[text.index('data-testid="import-refused"') :]
    assert '<td class="px-3 py-2">5</td>' in refused
    assert "value: '7' is not a level of max-members" in refused.replace("&#x27;", "'")


def test_import__data_changed_since_the_preview__applies_nothing_and_shows_the_new_preview(
    client, catalog_user, audited
):
    client.force_login(catalog_user)
    preview = upload(client, "admin:catalog_entitlement_import", PRICES)
    # Meanwhile someone else gives starter 4K, as the file does: that row is now unchanged.
    Entitlement.objects.create(
        item=Item.objects.get(key="starter"), feature=Feature.objects.get(key="4k-streaming"), value=True
    )

    response = confirm(client, "admin:catalog_entitlement_process_import", preview)

    assert response.status_code == 200
    text = response.content.decode()
    assert "The data changed since the preview" in text
    assert "0 created, 1 changed, 0 removed, 2 unchanged" in text
    assert value_of("business", "max-members") == 25
    again = confirm(client, "admin:catalog_entitlement_process_import", response)
    assert again.status_code == 302
    assert value_of("business", "max-members") == 50


def test_import__a_file_with_unknown_columns__is_refused_as_a_whole(client, catalog_user):
    client.force_login(catalog_user)

    preview = upload(
        client, "admin:catalog_entitlement_import", b"item,feature,vaule\nbusiness,max-members,5\n"
    )

    text = preview.content.decode().replace("&#x27;", "'")
    assert "Unknown column 'vaule'" in text
    assert 'id="import-confirm"' not in text


def test_import__of_items_from_the_items_page__uses_the_chosen_resource(client, catalog_user):
    client.force_login(catalog_user)
    content = b"key,kind,name,rank\nbusiness-2030,plan,Business 2030,25\n"

    preview = upload(client, "admin:catalog_item_import", content, resource="0")
    response = confirm(client, "admin:catalog_item_process_import", preview)

    assert response.status_code == 302
    assert Item.objects.get(key="business-2030").rank == 25


def test_import__by_a_user_who_may_not_change_the_model__is_forbidden(client, support_user):
    client.force_login(support_user)

    assert client.get(reverse("admin:catalog_entitlement_import")).status_code == 403


def test_import__of_overrides_by_support__refuses_features_not_tagged_for_support(client, support_user):
    client.force_login(support_user)
    content = (
        b"subscription,feature,valid_from,effect,value,valid_until\n"
        b"sub-streamfan,4k-streaming,2030-06-06T00:00:00Z,grant,true,2030-06-09T00:00:00Z\n"
        b"sub-acme,max-members,2030-06-06T00:00:00Z,grant,50,\n"
    )

    preview = upload(client, "admin:subscriptions_override_import", content)

    text = preview.content.decode()
    assert "1 created, 0 changed, 0 removed, 0 unchanged, 1 refused" in text
    assert "You may not grant or revoke max-members." in text
    assert 'id="import-confirm"' not in text
    assert not Override.objects.filter(valid_from__year=2030).exists()


def _exported_rows(response) -> list[dict[str, str]]:
    content = b"".join(response) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_export__follows_the_changelist_filters(client, catalog_user):
    client.force_login(catalog_user)
    url = reverse("admin:catalog_feature_export") + "?kind__exact=quantity"

    response = client.post(url, {"resource": "0", "format": CSV_FORMAT, **_all_fields("featureresource")})

    assert response.status_code == 200
    keys = {row["key"] for row in _exported_rows(response)}
    assert keys == set(Feature.objects.filter(kind="quantity").values_list("key", flat=True))
    assert keys and "4k-streaming" not in keys


def test_export__of_entitlements_from_the_items_page__covers_the_filtered_items(client, catalog_user):
    client.force_login(catalog_user)
    url = reverse("admin:catalog_item_export") + "?kind__exact=addon"

    response = client.post(url, {"resource": "1", "format": CSV_FORMAT, **_all_fields("entitlementresource")})

    assert response.status_code == 200
    assert _exported_rows(response) == [{"item": "extra-seats", "feature": "max-members", "value": "5"}]


def test_export__of_customers__follows_the_search(client, sales_user):
    client.force_login(sales_user)
    url = reverse("admin:subscriptions_customer_export") + "?q=acme"

    response = client.post(url, {"resource": "0", "format": CSV_FORMAT, **_all_fields("customerresource")})

    rows = _exported_rows(response)
    assert [row["external_id"] for row in rows] == ["acme"]
    assert Customer.objects.count() > 1


def _all_fields(resource: str) -> dict[str, str]:
    """The export form's column checkboxes, all ticked (as the form starts)."""
    kinds = {
        "featureresource": "features",
        "entitlementresource": "entitlements",
        "customerresource": "customers",
    }
    columns = resource_for(kinds[resource]).export_columns()
    return {f"{resource}_{column}": "on" for column in columns}


def test_import__xlsx__previews_and_applies(client, catalog_user):
    book = openpyxl.Workbook()
    book.active.append(["item", "feature", "value"])
    book.active.append(["business", "max-members", 50])  # a number, as a spreadsheet keeps it
    data = io.BytesIO()
    book.save(data)
    client.force_login(catalog_user)

    preview = client.post(
        reverse("admin:catalog_entitlement_import"),
        {"resource": "0", "format": "1", "import_file": SimpleUploadedFile("prices.xlsx", data.getvalue())},
    )
    response = confirm(client, "admin:catalog_entitlement_process_import", preview)

    assert "0 created, 1 changed" in preview.content.decode()
    assert response.status_code == 302
    assert value_of("business", "max-members") == 50


def test_import__a_tampered_confirmation__applies_nothing(client, catalog_user):
    client.force_login(catalog_user)
    preview = upload(client, "admin:catalog_entitlement_import", PRICES)

    wrong_resource = confirm(client, "admin:catalog_entitlement_process_import", preview, resource="7")
    unknown_file = confirm(
        client, "admin:catalog_entitlement_process_import", preview, import_file_name="nope"
    )

    assert wrong_resource.status_code == unknown_file.status_code == 302
    assert wrong_resource["Location"] == reverse("admin:catalog_entitlement_import")
    assert value_of("business", "max-members") == 25


def test_export__xlsx__holds_the_same_rows_as_csv(client, catalog_user):
    client.force_login(catalog_user)
    form = {"resource": "0", **_all_fields("featureresource")}

    as_csv = client.post(reverse("admin:catalog_feature_export"), {**form, "format": "0"})
    as_xlsx = client.post(reverse("admin:catalog_feature_export"), {**form, "format": "1"})

    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    header, *rows = [
        [cell if cell is not None else "" for cell in row] for row in sheet.iter_rows(values_only=True)
    ]
    from_xlsx = [dict(zip(header, [str(cell) for cell in row], strict=True)) for row in rows]
    assert from_xlsx == _exported_rows(as_csv)
    assert as_xlsx["Content-Disposition"].endswith('.xlsx"')


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)"])
def test_export__a_cell_a_spreadsheet_would_run__is_written_as_text_and_imports_back(
    client, sales_user, audited, name
):
    # Given a customer whose name a spreadsheet program would take for a formula
    Customer.objects.create(external_id="formula", name=name, country="DE")
    client.force_login(sales_user)
    url = reverse("admin:subscriptions_customer_export") + "?q=formula"
    form = {"resource": "0", **_all_fields("customerresource")}

    # When it is exported as CSV and as XLSX
    as_csv = client.post(url, {**form, "format": CSV_FORMAT})
    as_xlsx = client.post(url, {**form, "format": "1"})

    # Then each file holds it as text, quoted, and says how the CSV is encoded
    assert as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert _exported_rows(as_csv)[0]["name"] == "'" + name
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    header, _ = list(sheet.iter_rows(values_only=True))
    cell = sheet.cell(row=2, column=header.index("name") + 1)
    assert cell.data_type == "s" and cell.value == "'" + name
    # And importing the CSV back changes nothing: the quote is taken off again
    preview = upload(client, "admin:subscriptions_customer_import", as_csv.content, name="customers.csv")
    assert "0 created, 0 changed, 0 removed, 1 unchanged, 0 refused" in preview.content.decode()
