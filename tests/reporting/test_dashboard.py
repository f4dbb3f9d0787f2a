"""The admin's front page and a feature's Reporting tab, driven with the test client: the
numbers on the page are the demo customers' resolution, the filters narrow them, each table is
shown only to who may see it, and the page says how fresh its figures are."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api.models import CheckCount
from audit.models import ScheduledChange
from catalog.models import Feature, Item
from reporting.models import UsageSnapshot
from reporting.services import usage_snapshot_refresh
from subscriptions import services
from subscriptions.models import Customer, Subscription
from tests import factories as f
from tests.reporting.conftest import RenderedTable, page_numbers, per_feature, rendered_tables
from tests.usage.test_selectors import record_usage
from toolkit.change_context import change_context

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


def narrowed(usage: Counter, *, plan: str | None = None, country: str | None = None) -> Counter:
    return Counter(
        {
            key: n
            for key, n in usage.items()
            if (plan is None or f",{plan}," in key[4]) and (country is None or key[5] == country)
        }
    )


# --- figures -------------------------------------------------------------------------------------


def test_dashboard__demo__feature_usage_table_shows_each_features_resolved_counts(superuser_client, computed):
    response = superuser_client.get(INDEX)

    assert response.status_code == 200
    table = rendered_tables(response)["feature-usage"]
    expected = per_feature(computed)
    assert set(table.rows) == set(Feature.objects.filter(status="active").values_list("key", flat=True))
    for key, counts in expected.items():
        assert table.numbers(key) == page_numbers(counts), key
    assert table.numbers("max-members") == [5, 5, 0, 0, 0, 10, 15]


@pytest.mark.parametrize(
    ("query", "plan", "country"),
    [
        ("plan=business", "business", None),
        ("country=US", None, "US"),
        ("plan=business&country=US", "business", "US"),
    ],
)
def test_dashboard__plan_and_market_filters__counts_only_those_customers(
    superuser_client, computed, query, plan, country
):
    response = superuser_client.get(f"{INDEX}?{query}")

    table = rendered_tables(response)["feature-usage"]
    expected = per_feature(narrowed(computed, plan=plan, country=country))
    for key in table.rows:
        assert table.numbers(key) == page_numbers(expected.get(key, Counter())), key


def test_dashboard__no_live_plan_filter__counts_customers_without_a_live_subscription(
    superuser_client, computed
):
    response = superuser_client.get(f"{INDEX}?plan=-")

    # fabrikam (paused), oldco (canceled), tryhard (trial over), prospect (none)
    assert rendered_tables(response)["feature-usage"].numbers("data-export") == [0, 0, 0, 0, 0, 4, 4]


def test_dashboard__tag_filter__lists_the_features_with_that_tag(superuser_client, computed):
    response = superuser_client.get(f"{INDEX}?tag=support")

    assert set(rendered_tables(response)["feature-usage"].rows) == {
        "4k-streaming",
        "support-level",
        "api-calls",
        "ai-tokens",
    }


def test_dashboard__forged_filter_values__ignored(superuser_client, computed):
    response = superuser_client.get(f"{INDEX}?plan=%27%3B--&country=USA&tag=%3Cb%3E")

    assert response.status_code == 200
    assert rendered_tables(response)["feature-usage"].numbers("max-members") == [5, 5, 0, 0, 0, 10, 15]


def test_dashboard__checks_counted__table_and_chart_per_feature_over_30_days(superuser_client, computed):
    today = timezone.now().date()
    CheckCount.objects.bulk_create(
        [
            CheckCount(feature_key="max-members", day=today, count=7),
            CheckCount(feature_key="max-members", day=today - timedelta(days=10), count=3),
            CheckCount(feature_key="max-members", day=today - timedelta(days=30), count=1000),  # too old
            CheckCount(feature_key="4k-streaming", day=today - timedelta(days=1), count=2),
        ]
    )

    response = superuser_client.get(INDEX)

    checks = rendered_tables(response)["checks"]
    assert checks.numbers("max-members") == [10, 7]  # 30 days, last 7
    assert checks.numbers("4k-streaming") == [2, 2]
    assert 'data-type="line"' in response.content.decode()


def test_dashboard__ending_soon_and_scheduled__listed_with_their_links(superuser_client, computed):
    # Given a trial ending in 3 days (initech's ends in 10) and a scheduled change
    now = timezone.now()
    with change_context(actor=None, reason="Test data", source="shell"):
        soon = f.SubscriptionFactory(
            plan=Item.objects.get(key="standard"), status="trialing", trial_ends_at=now + timedelta(days=3)
        )
        change = ScheduledChange.objects.create(
            method="PUT",
            path="/api/v1/items/premium/entitlements/4k-streaming",
            body={"value": True},
            effective_at=now + timedelta(days=1),
            reason="Launch 4K for premium",
            created_by=User.objects.get(username="admin"),
        )

    response = superuser_client.get(INDEX)

    tables = rendered_tables(response)
    override = Subscription.objects.get(external_id="sub-streamfan").overrides.get()
    assert list(tables["overrides-ending"].rows) == [str(override.pk)]
    assert tables["overrides-ending"].texts(str(override.pk))[1:7] == [
        "streamfan",
        "GB",
        "sub-streamfan",
        "streaming-standard",
        "4k-streaming",
        "grant on",
    ]
    assert list(tables["trials-ending"].rows) == [str(soon.pk)]
    assert tables["scheduled-changes"].texts(str(change.pk))[1:4] == [
        "PUT",
        "/api/v1/items/premium/entitlements/4k-streaming",
        "Launch 4K for premium",
    ]
    page = response.content.decode()
    assert reverse("admin:subscriptions_customer_change", args=[override.subscription.customer.pk]) in page
    assert reverse("admin:audit_scheduledchange_change", args=[change.pk]) in page


# --- usage limits --------------------------------------------------------------------------------


@pytest.fixture
def near_limits(demo):
    """Usage recorded through the meter, then the snapshot computed: northwind at 85 % of its
    api-calls (hard, 1,000), umbrella past its ai-tokens (soft, 2,000,000), contoso exactly at
    its api-calls (100,000), acme and globex (unlimited) far from anything."""
    record_usage("northwind", "api-calls", 850)
    record_usage("umbrella", "ai-tokens", 2_500_000)
    record_usage("contoso", "api-calls", 100_000)
    record_usage("acme", "ai-tokens", 1_000)
    record_usage("globex", "ai-tokens", 90_000_000)
    usage_snapshot_refresh(now=timezone.now())


def test_dashboard__usage_limits__customers_at_or_near_a_limit_fullest_first(superuser_client, near_limits):
    response = superuser_client.get(INDEX)

    limits = rendered_tables(response)["limits"]
    assert list(limits.rows) == ["umbrella:ai-tokens", "contoso:api-calls", "northwind:api-calls"]
    assert limits.texts("umbrella:ai-tokens")[:7] == [
        "umbrella",
        "ai-tokens",
        "2,500,000",
        "2,000,000",
        "125 %",
        "over the limit",
        "soft",
    ]
    assert limits.texts("contoso:api-calls")[4:6] == ["100 %", "limit reached"]
    assert limits.texts("northwind:api-calls")[2:7] == ["850", "1,000", "85 %", "near the limit", "hard"]
    page = response.content.decode()
    northwind = Customer.objects.get(external_id="northwind")
    assert f'href="{reverse("admin:subscriptions_customer_change", args=[northwind.pk])}"' in page
    assert "Usage reporting isn" not in page


def test_dashboard__usage_limits__marked_near_and_reached(superuser_client, near_limits):
    page = superuser_client.get(INDEX).content.decode()

    table = page[page.index('data-testid="table-limits"') :]
    row = table[table.index('data-row="northwind:api-calls"') :]
    row = row[: row.index("</tr>")]
    assert "bg-orange-100" in row  # near: unfold's warning label
    over = table[table.index('data-row="umbrella:ai-tokens"') :]
    assert "bg-red-100" in over[: over.index("</tr>")]  # reached: its danger label


@pytest.mark.parametrize(
    ("query", "rows"),
    [
        ("plan=basic", ["northwind:api-calls"]),
        ("country=FR", ["umbrella:ai-tokens", "contoso:api-calls"]),
        ("feature=ai-tokens", ["umbrella:ai-tokens"]),
        ("tag=sales", []),
    ],
)
def test_dashboard__usage_limits__follow_the_filters(superuser_client, near_limits, query, rows):
    response = superuser_client.get(f"{INDEX}?{query}")

    assert list(rendered_tables(response).get("limits", RenderedTable()).rows) == rows


def test_dashboard__usage_limits__a_top_up_since_the_refresh_shows_at_the_next_one(
    superuser_client, near_limits
):
    # Given northwind near its limit, then topped up by 500 (900 of 1,500 is 56 %)
    with change_context(actor=None, reason="Goodwill, SUP-9", source="shell"):
        services.topup_grant(
            customer=Customer.objects.get(external_id="northwind"),
            feature=Feature.objects.get(key="api-calls"),
            amount=500,
            actor=None,
            reason="Goodwill, SUP-9",
            source="shell",
        )
    assert "northwind:api-calls" in rendered_tables(superuser_client.get(INDEX))["limits"].rows

    # When the figures are computed again
    usage_snapshot_refresh(now=timezone.now())

    # Then northwind is no longer near its (raised) limit
    assert "northwind:api-calls" not in rendered_tables(superuser_client.get(INDEX))["limits"].rows


def test_dashboard__usage_limits__nobody_near__says_so(superuser_client, computed):
    response = superuser_client.get(INDEX)

    page = response.content.decode()
    assert 'data-testid="empty-limits"' in page
    assert "No customer has used 80 % or more of a metered limit this period." in page


def test_feature_reporting__metered_feature__its_customers_near_the_limit(superuser_client, near_limits):
    api_calls = Feature.objects.get(key="api-calls")
    max_members = Feature.objects.get(key="max-members")

    metered = superuser_client.get(
        reverse("admin:reporting_feature", args=[api_calls.pk]), HTTP_HX_REQUEST="true"
    )
    other = superuser_client.get(
        reverse("admin:reporting_feature", args=[max_members.pk]), HTTP_HX_REQUEST="true"
    )

    assert list(rendered_tables(metered)["limits"].rows) == ["contoso:api-calls", "northwind:api-calls"]
    assert "limits" not in rendered_tables(other)
    assert 'data-testid="limits"' not in other.content.decode()


# --- freshness -----------------------------------------------------------------------------------


def test_dashboard__snapshot_minutes_old__says_when_it_was_computed(superuser_client, demo):
    usage_snapshot_refresh(now=timezone.now() - timedelta(minutes=3))

    page = superuser_client.get(INDEX).content.decode()

    assert "3\xa0minutes ago" in page
    assert "for 15 customers" in page
    assert 'data-testid="stale"' not in page


def test_dashboard__snapshot_hours_old__warns_that_it_is_stale(superuser_client, demo):
    usage_snapshot_refresh(now=timezone.now() - timedelta(hours=2))

    page = superuser_client.get(INDEX).content.decode()

    assert "2\xa0hours ago" in page
    assert 'data-testid="stale"' in page


def test_dashboard__never_computed__says_so_and_shows_no_counts(superuser_client, demo):
    response = superuser_client.get(INDEX)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="not-computed"' in page
    assert rendered_tables(response)["feature-usage"].numbers("max-members") == []  # "—", not 0
    assert 'data-type="bar"' not in page


def test_dashboard__last_refresh_failed__previous_figures_shown_with_a_warning(superuser_client, computed):
    UsageSnapshot.objects.create(
        computed_at=timezone.now(), status=UsageSnapshot.Status.FAILED, error="RuntimeError()"
    )

    response = superuser_client.get(INDEX)

    assert 'data-testid="refresh-failed"' in response.content.decode()
    assert rendered_tables(response)["feature-usage"].numbers("max-members") == [5, 5, 0, 0, 0, 10, 15]


def test_dashboard__feature_added_after_the_snapshot__shown_as_not_counted_yet(superuser_client, computed):
    f.FeatureFactory(key="brand-new")

    table = rendered_tables(superuser_client.get(INDEX))["feature-usage"]

    assert table.texts("brand-new")[2:] == ["—"] * 7


# --- who sees what -------------------------------------------------------------------------------


def test_dashboard__product_user__sees_the_figures_and_the_lists_its_role_may_view(product_client, computed):
    response = product_client.get(INDEX)

    tables = rendered_tables(response)
    assert tables["feature-usage"].numbers("max-members") == [5, 5, 0, 0, 0, 10, 15]
    assert "overrides-ending" in tables
    page = response.content.decode()
    assert 'data-testid="trials-ending"' in page
    product = User.objects.get(username="product")
    assert ('data-testid="scheduled-changes"' in page) == product.has_perm("audit.view_scheduledchange")


def test_dashboard__user_who_may_view_features_only__sees_usage_but_no_customer_lists(client, computed):
    user = f.UserFactory(username="analyst")
    user.user_permissions.add(Permission.objects.get(codename="view_feature"))
    client.force_login(user)

    response = client.get(INDEX)

    tables = rendered_tables(response)
    assert tables["feature-usage"].numbers("max-members") == [5, 5, 0, 0, 0, 10, 15]
    page = response.content.decode()
    for card in ("overrides-ending", "trials-ending", "scheduled-changes"):
        assert f'data-testid="{card}"' not in page


def test_dashboard__staff_without_any_view_permission__no_figures(client, computed):
    client.force_login(f.UserFactory(username="newcomer"))

    response = client.get(INDEX)

    assert response.status_code == 200
    page = response.content.decode()
    assert "You may not view features" in page
    assert rendered_tables(response) == {}


# --- a feature's Reporting tab -------------------------------------------------------------------


def test_feature_page__reporting_tab__present_and_loads_its_figures_when_opened(superuser_client, computed):
    feature = Feature.objects.get(key="max-members")
    url = reverse("admin:reporting_feature", args=[feature.pk])

    page = superuser_client.get(reverse("admin:catalog_feature_change", args=[feature.pk])).content.decode()

    assert re.search(r'<a href="#dataset-reporting"[^>]*>\s*Reporting\s*</a>', page)
    assert f'hx-get="{url}"' in page
    assert 'hx-trigger="intersect once"' in page


def test_feature_add_page__no_reporting_tab(superuser_client, demo):
    page = superuser_client.get(reverse("admin:catalog_feature_add")).content.decode()

    assert "dataset-reporting" not in page


def test_feature_reporting__max_members__customers_by_source_as_resolved(superuser_client, computed):
    feature = Feature.objects.get(key="max-members")

    response = superuser_client.get(
        reverse("admin:reporting_feature", args=[feature.pk]) + "?country=US", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "<html" not in response.content.decode()  # the tab's content alone
    sources = rendered_tables(response)["usage-by-source"]
    us = Counter()
    for (key, enabled, kind, source, _plans, country), n in computed.items():
        if key == "max-members" and country == "US":
            us[f"{'on' if enabled else 'off'}:{kind}:{source}"] += n
    assert {row: sources.numbers(row)[0] for row in sources.rows} == dict(us)
    assert sources.numbers("on:plan:business") == [1]  # acme (hooli is past its grace)


def test_feature_reporting__opened_directly__a_page_of_its_own(superuser_client, computed):
    feature = Feature.objects.get(key="4k-streaming")

    response = superuser_client.get(reverse("admin:reporting_feature", args=[feature.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and 'data-testid="feature-reporting"' in page
    assert rendered_tables(response)["usage-by-source"].numbers("on:override:") == [1]


def test_feature_reporting__user_without_view_permission__403(client, computed):
    client.force_login(f.UserFactory(username="newcomer"))
    feature = Feature.objects.get(key="max-members")

    response = client.get(reverse("admin:reporting_feature", args=[feature.pk]))

    assert response.status_code == 403


def test_dashboard__customers_in_snapshot__match_the_customer_table(superuser_client, computed):
    response = superuser_client.get(INDEX)

    assert f"for {Customer.objects.count()} customers" in response.content.decode()


def test_dashboard__wired_as_unfolds_dashboard_callback__same_page_built_once(
    superuser_client, computed, settings
):
    # Given the page's figures counted as the template tag builds them
    with CaptureQueriesContext(connection) as by_tag:
        by_tag_page = superuser_client.get(INDEX)

    # When unfold's DASHBOARD_CALLBACK builds them instead
    settings.UNFOLD = {**settings.UNFOLD, "DASHBOARD_CALLBACK": "reporting.dashboard.dashboard_callback"}
    with CaptureQueriesContext(connection) as by_callback:
        by_callback_page = superuser_client.get(INDEX)

    # Then the page is the same, and the figures were not computed twice
    assert rendered_tables(by_callback_page) == rendered_tables(by_tag_page)
    assert len(by_callback) == len(by_tag)


def test_snapshot_admin__superuser__lists_the_snapshots(superuser_client, computed):
    response = superuser_client.get(reverse("admin:reporting_usagesnapshot_changelist"))

    assert response.status_code == 200
    assert "complete" in response.content.decode().lower()
