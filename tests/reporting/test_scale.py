"""The dashboard at 100k customers: it reads the precomputed snapshot, so its queries are a
fixed handful, whatever the number of customers, and it shows the figures the snapshot holds.
How fast it answers is the benchmark's to measure, not this test's.

The snapshot is written straight into its tables (120k rows, 10 customers each, 100k customers
for each of the demo's 12 features; 20k customers near a usage limit): those tables are all
the page reads about usage. That the service fills them right for many customers is tested in
test_services.py.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import CheckCount
from catalog.models import Feature
from reporting.models import FeatureUsage, LimitUsage, UsageSnapshot
from subscriptions.models import Customer
from tests.reporting.conftest import page_numbers, rendered_tables

pytestmark = pytest.mark.django_db

FEATURES = 12  # the demo's
ROWS = 120_000
PER_ROW = 10  # customers a row counts
SOURCES = [
    (True, "plan", "business"),
    (True, "addon", "extra-seats"),
    (True, "segment", "beta"),
    (True, "override", ""),
    (False, "default", ""),
    (False, "market", ""),
]
PLANS = ["", ",business,", ",starter,", ",basic,streaming-premium,", ",enterprise,"]
COUNTRIES = ["DE", "ES", "FR", "GB", "IE", "IT", "NL", "PL", "SE", "US"]

# Queries of one page view, whatever the number of customers: session, user, snapshot,
# checks, features, feature usage, overrides, trials, scheduled changes and customers near a
# usage limit (each with its count in all), plans and tags for the filters. A member of a
# role costs two more, none of them the dashboard's: its permissions (its own and its
# groups'). Whether it may change some feature or some segment (the admin's application list
# asks) is cached across requests (catalog.permissions.holds_any): it was four more queries
# on every page.
PINNED = {"superuser": 12, "product": 14}
LIMIT_ROWS = 20_000  # customers near a usage limit


def row_dimensions(i: int) -> tuple[int, tuple[bool, str, str], str, str]:
    """Row i's feature index, source, plans and country: the formula the SQL below uses."""
    j = i // FEATURES
    return i % FEATURES, SOURCES[j % 6], PLANS[(j // 6) % 5], COUNTRIES[(j // 30) % 10]


@pytest.fixture
def big_snapshot(demo):
    """A complete snapshot of 120k rows for the demo's 12 features, written in one statement,
    and LIMIT_ROWS customers near a limit."""
    features = list(Feature.objects.order_by("key").values_list("key", flat=True))
    assert len(features) == FEATURES
    snapshot = UsageSnapshot.objects.create(
        computed_at=timezone.now() - timedelta(minutes=2),
        finished_at=timezone.now(),
        status=UsageSnapshot.Status.COMPLETE,
        customers=ROWS * PER_ROW // len(features),
        countries=COUNTRIES,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {FeatureUsage._meta.db_table}
                    (snapshot_id, feature_key, enabled, source_kind, source_key, plans, country, customers)
                SELECT %(snapshot)s,
                       (%(features)s::text[])[1 + i %% %(n)s],
                       (%(enabled)s::boolean[])[1 + (i / %(n)s) %% 6],
                       (%(kinds)s::text[])[1 + (i / %(n)s) %% 6],
                       (%(keys)s::text[])[1 + (i / %(n)s) %% 6],
                       (%(plans)s::text[])[1 + (i / (6 * %(n)s)) %% 5],
                       (%(countries)s::text[])[1 + (i / (30 * %(n)s)) %% 10],
                       %(per_row)s
                FROM generate_series(0, %(last)s) AS i""",
            {
                "snapshot": snapshot.pk,
                "features": features,
                "n": FEATURES,
                "enabled": [s[0] for s in SOURCES],
                "kinds": [s[1] for s in SOURCES],
                "keys": [s[2] for s in SOURCES],
                "plans": PLANS,
                "countries": COUNTRIES,
                "per_row": PER_ROW,
                "last": ROWS - 1,
            },
        )
        cursor.execute(f"ANALYZE {FeatureUsage._meta.db_table}")
        # Near a limit: 800 to 1,499 used of 1,000, cycling over the demo's customers.
        cursor.execute(
            f"""INSERT INTO {LimitUsage._meta.db_table}
                    (snapshot_id, customer_id, feature_key, period_start, resets_at, used, "limit",
                     hard, share, plans, country)
                SELECT %(snapshot)s, (%(customers)s::bigint[])[1 + i %% 15],
                       (ARRAY['ai-tokens', 'api-calls'])[1 + i %% 2], %(start)s, %(end)s,
                       800 + i %% 700, 1000, i %% 2 = 1, (800 + i %% 700) / 1000.0,
                       (%(plans)s::text[])[1 + (i / 2) %% 5], (%(countries)s::text[])[1 + (i / 10) %% 10]
                FROM generate_series(0, %(last)s) AS i""",
            {
                "snapshot": snapshot.pk,
                "customers": list(Customer.objects.order_by("pk").values_list("pk", flat=True)),
                "start": timezone.now() - timedelta(days=3),
                "end": timezone.now() + timedelta(days=27),
                "plans": PLANS,
                "countries": COUNTRIES,
                "last": LIMIT_ROWS - 1,
            },
        )
        cursor.execute(f"ANALYZE {LimitUsage._meta.db_table}")
    today = timezone.now().date()
    CheckCount.objects.bulk_create(
        CheckCount(feature_key=key, day=today - timedelta(days=n), count=1000 + n)
        for key in features
        for n in range(30)
    )
    return features


def expected_counts(features: list[str], *, plan: str | None = None, country: str | None = None):
    """Per feature: customers by source kind ("off" for those without), from the formula."""
    counts = {key: Counter() for key in features}
    for i in range(ROWS):
        feature, (enabled, kind, _key), plans, row_country = row_dimensions(i)
        if plan is not None and f",{plan}," not in plans:
            continue
        if country is not None and row_country != country:
            continue
        counts[features[feature]][kind if enabled else "off"] += PER_ROW
    return counts


VIEWS = [
    # who, query string, and the plan and market it narrows the customers to
    ("superuser", "", None, None),
    ("superuser", "?plan=business&country=DE&tag=sales", "business", "DE"),
    ("product", "?plan=streaming-premium", "streaming-premium", None),
]


def test_dashboard__100k_customers__pinned_queries_and_the_snapshot_figures(
    client, big_snapshot, django_assert_num_queries
):
    from django.contrib.auth.models import User

    for who, query, plan, country in VIEWS:
        # Given a snapshot of 100k customers, and a member of staff
        client.force_login(User.objects.get(username="admin" if who == "superuser" else "product"))
        url = f"/admin/{query}"
        client.get(url)  # warm the process-wide caches (content types, templates)

        # When the dashboard opens: a fixed number of queries ...
        with django_assert_num_queries(PINNED[who]):
            response = client.get(url)

        # ... with the snapshot's figures on the page
        assert response.status_code == 200
        table = rendered_tables(response)["feature-usage"]
        expected = expected_counts(big_snapshot, plan=plan, country=country)
        shown = ["max-members"] if "tag=sales" in query else big_snapshot
        assert sorted(table.rows) == sorted(shown), url
        for key in shown:
            assert table.numbers(key) == page_numbers(expected[key]), (url, key)
        if not query:
            # 10,000 rows per feature cycle through the six sources: 1,667 or 1,666 rows each.
            assert table.numbers("max-members") == [66_680, 16_670, 16_670, 16_670, 16_670, 33_320, 100_000]
        assert rendered_tables(response)["checks"].numbers("max-members") == [
            sum(1000 + n for n in range(30)),
            sum(1000 + n for n in range(7)),
        ]
        assert "for 100,000 customers" in response.content.decode()
        # ... and the first rows of the customers near a limit, the fullest first
        # (the demo's 15 customers recur, so rows are counted in the page, not by key)
        page = response.content.decode()
        if "tag=sales" in query:  # no metered feature is tagged for Sales
            assert 'data-testid="empty-limits"' in page
            continue
        limits = page[page.index('data-testid="table-limits"') :]
        limits = limits[: limits.index("</table>")]
        assert limits.count("<tr data-row=") == 20
        assert set(re.findall(r'data-value="(\d+)"', limits)[2::3]) == {"149"}, url


def test_dashboard__100k_customers__csv_export_sums_the_same_figures(client, big_snapshot):
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username="admin"))

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/reporting/usagesnapshot/export/feature-usage.csv?country=US")

    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    expected = expected_counts(big_snapshot, country="US")
    assert len(lines) == 1 + len(big_snapshot)
    max_members = next(line for line in lines if line.startswith("max-members,"))
    assert [int(n) for n in max_members.split(",")[2:]] == page_numbers(expected["max-members"])
    assert len(queries) <= 6  # session, user, snapshot, features, usage


def test_dashboard__20k_near_a_limit__csv_lists_them_all_the_fullest_first(client, big_snapshot):
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username="admin"))

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/reporting/usagesnapshot/export/limits.csv")

    assert response.status_code == 200
    header, *rows = [line.split(",") for line in response.content.decode().splitlines()]
    assert header[:6] == ["Customer", "Feature", "Used", "Limit", "Used %", "State"]
    assert len(rows) == LIMIT_ROWS
    shares = [int(row[4]) for row in rows]
    assert shares == sorted(shares, reverse=True)
    assert (shares[0], shares[-1]) == (149, 80)
    assert len(queries) <= 4  # session, user, snapshot, the rows with their customers
