"""A catalog admin loads a price list in the browser: upload, preview, confirm with a reason,
and the changes are in the audit log under that reason."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

REASON = "Spring price list, ticket CAT-2031"
PRICE_LIST = b"""item,feature,value
business,max-members,50
starter,4k-streaming,true
basic,support-level,email
"""


def test_catalog__imports_entitlements__previews__confirms_with_a_reason__finds_them_in_the_audit_log(
    page, demo_live, login, tmp_path
):
    from catalog.models import Entitlement

    price_list = tmp_path / "price-list.csv"
    price_list.write_bytes(PRICE_LIST)
    login(page, demo_live, "catalog")

    # From the plans page, the catalog admin opens the import and picks entitlements.
    page.goto(f"{demo_live.url}/admin/catalog/item/")
    page.get_by_role("link", name="Import").click()
    expect(page).to_have_url(re.compile(r"/admin/catalog/item/import/$"))
    page.locator("#id_resource").select_option(label="Entitlements (item → feature → value)")
    page.locator("#id_import_file").set_input_files(str(price_list))
    page.locator("#id_format").select_option(label="csv")
    page.get_by_role("button", name="Preview").click()

    # The preview says what will change, and nothing has changed yet.
    preview = page.get_by_test_id("import-preview")
    expect(preview).to_contain_text("Preview: 1 created, 1 changed, 0 removed, 1 unchanged, 0 refused")
    changes = page.get_by_test_id("import-changes")
    expect(changes.locator("tr", has_text="business → max-members")).to_contain_text("25")
    expect(changes.locator("tr", has_text="business → max-members")).to_contain_text("50")
    expect(changes.locator("tr", has_text="starter → 4k-streaming")).to_contain_text("Create")
    assert Entitlement.objects.get(item__key="business", feature__key="max-members").value == 25
    screenshot(page, "import-preview")

    # Confirming needs a reason.
    page.get_by_role("button", name="Confirm import").click()
    expect(page.locator("#id_change_reason:invalid")).to_have_count(1)
    page.locator("#id_change_reason").fill(REASON)
    page.get_by_role("button", name="Confirm import").click()
    expect(page.get_by_text("Imported price-list.csv: 1 created, 1 changed")).to_be_visible()
    assert Entitlement.objects.get(item__key="business", feature__key="max-members").value == 50
    screenshot(page, "import-applied")

    # The audit log lists both changes under the reason, from the import, by the catalog admin.
    page.goto(f"{demo_live.url}/admin/audit/auditentry/?q={REASON.replace(' ', '+')}")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    changed = rows.filter(has_text="business → max-members")
    expect(changed).to_contain_text("catalog")
    expect(changed).to_contain_text("import")
    expect(changed).to_contain_text("50")
    expect(rows.filter(has_text="starter → 4k-streaming")).to_have_count(1)
    screenshot(page, "import-audit-log")

    # The preview went through the same services and was rolled back: it left no entry.
    page.goto(f"{demo_live.url}/admin/audit/auditentry/?q=Preview+of+an+import")
    expect(page.locator("#result_list tbody tr")).to_have_count(0)


OVERRIDES = b"""subscription,feature,valid_from,effect,value,valid_until
sub-streamfan,4k-streaming,2030-06-06,grant,true,2030-06-09
sub-acme,max-members,2030-06-06,grant,50,
"""


def test_support__imports_overrides__a_feature_not_tagged_for_support_is_refused_in_the_preview(
    page, demo_live, login, tmp_path
):
    from subscriptions.models import Override

    overrides = tmp_path / "goodwill.csv"
    overrides.write_bytes(OVERRIDES)
    before = Override.objects.count()
    login(page, demo_live, "support")

    page.goto(f"{demo_live.url}/admin/subscriptions/override/")
    page.get_by_role("link", name="Import").click()
    page.locator("#id_import_file").set_input_files(str(overrides))
    page.locator("#id_format").select_option(label="csv")
    page.get_by_role("button", name="Preview").click()

    # The preview runs each row through the service, as Support: the grant of a feature tagged
    # for Support is shown, the other is refused with the service's own words, and nothing can
    # be confirmed.
    preview = page.get_by_test_id("import-preview")
    expect(preview).to_contain_text("Preview: 1 created, 0 changed, 0 removed, 0 unchanged, 1 refused")
    expect(page.get_by_text("You may not grant or revoke max-members.")).to_be_visible()
    expect(page.get_by_role("button", name="Confirm import")).to_have_count(0)
    screenshot(page, "import-overrides-support-preview")
    assert Override.objects.count() == before
