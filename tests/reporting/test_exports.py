"""Every table of the dashboard exports as CSV: the page's columns, every row (not only those
shown), and the page's filters; and only to those who may see the table."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from api.models import CheckCount
from audit.models import ScheduledChange
from catalog.models import Item
from reporting.services import usage_snapshot_refresh
from reporting.tables import CHECK_DAYS, PAGE_ROWS, TABLES
from tests import factories as f
from tests.reporting.conftest import HAVE_KINDS, csv_rows, per_feature, rendered_tables
from tests.usage.test_selectors import record_usage
from toolkit.change_context import change_context

pytestmark = pytest.mark.django_db


def export(client, table: str, query: str = ""):
    return client.get(reverse("admin:reporting_export", args=[table]) + (f"?{query}" if query else ""))


@pytest.mark.parametrize("query", ["", "plan=business", "country=US", "plan=basic&country=DE", "tag=support"])
def test_feature_usage_csv__follows_the_filters__same_rows_as_the_page(superuser_client, computed, query):
    # When the page and its export are asked for with the same filters
    page = rendered_tables(superuser_client.get(f"/admin/?{query}"))["feature-usage"]
    response = export(superuser_client, "feature-usage", query)

    # Then the export is a CSV download with the page's columns and rows, number for number
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="entitle-feature-usage-')
    header, *rows = csv_rows(response)
    assert header[:3] == ["Feature", "Name", "Customers with it"]
    assert {row[0]: [int(n) for n in row[2:]] for row in rows} == {
        key: page.numbers(key) for key in page.rows
    }


def test_feature_usage_csv__plan_and_market__counts_match_resolving_those_customers(
    superuser_client, computed
):
    response = export(superuser_client, "feature-usage", "plan=business&country=US")

    _header, *rows = csv_rows(response)
    expected = per_feature(
        Counter({k: n for k, n in computed.items() if ",business," in k[4] and k[5] == "US"})
    )
    for row in rows:
        counts = expected.get(row[0], Counter())
        assert [int(n) for n in row[3:7]] == [counts[kind] for kind in HAVE_KINDS], row[0]
        assert int(row[7]) == counts["off"]
    # acme and hooli are the US customers on business; hooli is past its grace
    assert next(row for row in rows if row[0] == "max-members")[2:] == ["1", "1", "0", "0", "0", "1", "2"]


def test_usage_by_source_csv__one_feature__its_sources_with_keys(superuser_client, computed):
    response = export(superuser_client, "usage-by-source", "feature=max-members&country=US")

    header, *rows = csv_rows(response)
    assert header == ["Answer", "Source", "Plan, add-on or segment", "Customers"]
    assert sorted(rows) == sorted(
        [
            ["true", "plan", "business", "1"],
            ["true", "plan", "business-2024", "1"],
            ["false", "default", "", "2"],
        ]
    )


def test_checks_csvs__follow_the_feature_and_tag_filters(superuser_client, computed):
    today = timezone.now().date()
    CheckCount.objects.bulk_create(
        CheckCount(feature_key=key, day=today - timedelta(days=n), count=n + 1)
        for key in ("max-members", "4k-streaming")
        for n in range(3)
    )

    by_day = csv_rows(export(superuser_client, "checks-by-day", "feature=max-members"))
    summary = csv_rows(export(superuser_client, "checks", "tag=support"))

    assert by_day[0] == ["Feature", "Day", "Checks"]
    assert len(by_day) == 1 + CHECK_DAYS  # every day of the window, 0 where nothing was counted
    assert {row[0] for row in by_day[1:]} == {"max-members"}
    assert by_day[-1] == ["max-members", today.isoformat(), "1"]
    assert sum(int(row[2]) for row in by_day[1:]) == 1 + 2 + 3
    assert [row[:3] for row in summary[1:]] == [["4k-streaming", "6", "6"]]


def test_ending_soon_csvs__list_every_row_not_only_the_pages(superuser_client, computed):
    # Given more trials ending this week than the page shows, on two plans
    now = timezone.now()
    standard, basic = Item.objects.get(key="standard"), Item.objects.get(key="basic")
    with change_context(actor=None, reason="Test data", source="shell"):
        for n in range(PAGE_ROWS + 5):
            f.SubscriptionFactory(
                plan=standard if n % 5 else basic,
                status="trialing",
                trial_ends_at=now + timedelta(hours=n + 1),
                customer=f.CustomerFactory(country="FR" if n % 2 else "DE"),
            )

    page = superuser_client.get("/admin/")
    everything = csv_rows(export(superuser_client, "trials-ending"))
    basic_de = csv_rows(export(superuser_client, "trials-ending", "plan=basic&country=DE"))

    assert len(rendered_tables(page)["trials-ending"].rows) == PAGE_ROWS
    assert 'data-testid="truncated"' in page.content.decode()
    assert everything[0] == ["Ends", "Customer", "Market", "Subscription", "Plan"]
    assert len(everything) == 1 + PAGE_ROWS + 5
    assert [row[4] for row in basic_de[1:]] == ["basic"] * 3  # n = 0, 10, 20
    assert {row[2] for row in basic_de[1:]} == {"DE"}
    ends = [row[0] for row in everything[1:]]
    assert ends == sorted(ends)


def test_overrides_ending_csv__tag_and_plan_filters(superuser_client, computed):
    support = csv_rows(export(superuser_client, "overrides-ending", "tag=support"))
    sales = csv_rows(export(superuser_client, "overrides-ending", "tag=sales"))
    other_plan = csv_rows(export(superuser_client, "overrides-ending", "plan=business"))

    assert [row[1] for row in support[1:]] == ["streamfan"]  # 4k-streaming is tagged support
    assert sales[1:] == [] and other_plan[1:] == []


def test_scheduled_changes_csv__feature_filter__changes_that_name_it(superuser_client, computed):
    admin = User.objects.get(username="admin")
    with change_context(actor=None, reason="Test data", source="shell"):
        for path, body in (
            ("/api/v1/items/premium/entitlements/4k-streaming", {"value": True}),
            ("/api/v1/subscriptions/sub-acme/overrides", {"feature": "4k-streaming", "effect": "grant"}),
            ("/api/v1/features/max-members", {"name": "Seats"}),
        ):
            ScheduledChange.objects.create(
                method="PUT",
                path=path,
                body=body,
                effective_at=timezone.now() + timedelta(days=1),
                reason="=HYPERLINK(1)" if "features" in path else "Planned",
                created_by=admin,
            )

    streaming = csv_rows(export(superuser_client, "scheduled-changes", "feature=4k-streaming"))
    everything = csv_rows(export(superuser_client, "scheduled-changes"))

    assert [row[2] for row in streaming[1:]] == [
        "/api/v1/items/premium/entitlements/4k-streaming",
        "/api/v1/subscriptions/sub-acme/overrides",
    ]
    assert len(everything) == 4
    # A reason a spreadsheet would run as a formula is written as text.
    assert "'=HYPERLINK(1)" in [row[3] for row in everything]


def test_limits_csv__every_customer_near_a_limit__page_columns_formulas_quoted(superuser_client, demo):
    # Given a customer whose external id a spreadsheet would run, near its api-calls limit,
    # and northwind past it
    with change_context(actor=None, reason="Test data", source="shell"):
        f.SubscriptionFactory(
            plan=Item.objects.get(key="basic"),
            customer=f.CustomerFactory(external_id="=HYPERLINK(1)", country="DE"),
            current_period_end=timezone.now() + timedelta(days=10),
        )
    record_usage("=HYPERLINK(1)", "api-calls", 900)
    record_usage("northwind", "api-calls", 1_200)
    usage_snapshot_refresh(now=timezone.now())

    page = rendered_tables(superuser_client.get("/admin/?country=DE"))["limits"]
    response = export(superuser_client, "limits", "country=DE")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = csv_rows(response)
    assert header == ["Customer", "Feature", "Used", "Limit", "Used %", "State", "Limit type", "Resets"]
    assert [row[:7] for row in rows] == [
        ["northwind", "api-calls", "1200", "1000", "120", "over", "hard"],
        ["'=HYPERLINK(1)", "api-calls", "900", "1000", "90", "near", "hard"],
    ]
    assert list(page.rows) == ["northwind:api-calls", "=HYPERLINK(1):api-calls"]
    assert export(superuser_client, "limits", "country=US").content.decode().splitlines()[1:] == []


@pytest.mark.parametrize("table", list(TABLES))
def test_csv__staff_without_the_tables_permission__403(client, computed, table):
    client.force_login(f.UserFactory(username="newcomer"))

    assert export(client, table).status_code == 403


def test_csv__permission_per_table__features_yes_overrides_no(client, computed):
    user = f.UserFactory(username="analyst")
    user.user_permissions.add(Permission.objects.get(codename="view_feature"))
    client.force_login(user)

    assert export(client, "feature-usage").status_code == 200
    assert export(client, "overrides-ending").status_code == 403


def test_csv__not_logged_in__sent_to_the_login_page(client, computed):
    response = export(client, "feature-usage")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_csv__unknown_table__404(superuser_client, computed):
    assert export(superuser_client, "customers-and-passwords").status_code == 404


def test_csv__every_table_of_the_page__has_an_export_link_with_the_filters(superuser_client, computed):
    page = superuser_client.get("/admin/?plan=business&country=US").content.decode()

    for table in ("feature-usage", "checks", "checks-by-day", "overrides-ending", "trials-ending", "limits"):
        url = reverse("admin:reporting_export", args=[table])
        assert f'href="{url}?plan=business&amp;country=US"' in page, table
