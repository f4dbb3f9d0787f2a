"""The audit log's changelist at size: its source filter needs no query, its count stops at a
limit and says so while every page stays reachable, its pages are read off indexes, and a role
user opens it within the same small number of queries as a superuser."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from catalog.models import Feature, FeatureUserPermission
from subscriptions.models import Customer
from tests import factories as f
from tests.admin_pages import explain_without_scans_or_sorts, text
from toolkit.change_context import SOURCES, change_context

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_log(db):
    """Start from an empty log (the data migration's entries are there in the test database)."""
    AuditEntry.objects.all().delete()


URL = "/admin/audit/auditentry/"
PER_PAGE = 50  # AuditEntryAdmin.list_per_page


def entries(count: int, *, source: str = "shell") -> list[AuditEntry]:
    """`count` audit entries of one source, a minute apart, newest last."""
    start = timezone.now() - timedelta(days=1)
    content_type = ContentType.objects.get_for_model(Customer)
    return AuditEntry.objects.bulk_create(
        AuditEntry(
            history_date=start + timedelta(minutes=n),
            source=source,
            request_id=uuid.uuid4(),
            reason=f"Entry {n}",
            content_type=content_type,
            object_id=str(n),
            object_repr=f"customer {n}",
            action=AuditEntry.Action.CHANGED,
            history_id=n,
        )
        for n in range(count)
    )


def result_count_text(response) -> str:
    found = re.search(r'data-testid="result-count">(.*?)</div>', text(response), re.S)
    assert found, "the pagination's count is missing"
    return " ".join(found.group(1).split())


def page_links(response) -> list[int]:
    return sorted({int(n) for n in re.findall(r'href="\?[^"]*\bp=(\d+)', response.content.decode())})


def test_source_filter__every_source_offered__without_asking_the_database(client, superuser):
    entries(3, source="api")
    client.get(URL)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)

    assert response.status_code == 200
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper()]
    offered = set(re.findall(r"source__exact=(\w+)", response.content.decode()))
    assert offered == set(SOURCES)


def test_source_filter__chosen__lists_that_source_only(client, superuser):
    entries(3, source="api")
    entries(2, source="import")

    response = client.get(f"{URL}?source__exact=import")

    assert response.status_code == 200
    assert {e.source for e in response.context["cl"].result_list} == {"import"}
    assert result_count_text(response) == "2 Audit log"


@pytest.mark.parametrize(("role", "pin"), [("superuser", 6), ("sales", 8)])
def test_audit_log__role_or_superuser__within_pinned_queries(
    client, django_assert_max_num_queries, role, pin
):
    """Issue #8: ≤ 8 queries for every role (superuser: session, user, the two filters that
    list users and models, count, page; a role user adds its model permissions)."""
    entries(PER_PAGE + 10)
    user = f.SuperuserFactory() if role == "superuser" else f.UserFactory(groups=["Sales"])
    client.force_login(user)
    client.get(URL)

    with django_assert_max_num_queries(pin):
        response = client.get(URL)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == PER_PAGE


def test_count__more_rows_than_the_limit__says_more_than_and_every_page_is_reachable(
    client, superuser, settings
):
    settings.ENTITLE_ADMIN_COUNT_LIMIT = 60
    entries(4 * PER_PAGE - 20)  # 180 entries: pages 1-4, the last one with 30

    first = client.get(URL)

    assert result_count_text(first) == "- more than 60 Audit log"
    assert "more than 60 results" in text(first)  # the header says it too, not "61"
    assert page_links(first) == [2]  # the count stopped at 61 rows: page 2 is all it knows of

    second = client.get(f"{URL}?p=2")  # counts on from there: 50 + 60 rows, still more

    assert result_count_text(second) == "- more than 110 Audit log"
    assert page_links(second) == [1, 3]

    last = client.get(f"{URL}?p=4")  # 150 + 60 > 180: the count is exact again

    assert result_count_text(last) == "- 180 Audit log"
    assert page_links(last) == [1, 2, 3]
    assert [e.reason for e in last.context["cl"].result_list] == [f"Entry {n}" for n in range(29, -1, -1)]


def test_count__fewer_rows_than_the_limit__exact(client, superuser):
    entries(PER_PAGE + 5)

    response = client.get(URL)

    assert result_count_text(response) == "- 55 Audit log"
    assert page_links(response) == [2]


def test_count__query__stops_at_the_limit(client, superuser, settings):
    settings.ENTITLE_ADMIN_COUNT_LIMIT = 60
    entries(PER_PAGE + 20)

    with CaptureQueriesContext(connection) as queries:
        client.get(URL)

    counts = [q["sql"] for q in queries if q["sql"].startswith("SELECT COUNT(*)")]
    assert len(counts) == 1
    assert "LIMIT 61" in counts[0]


@pytest.mark.parametrize("query", ["", "?source__exact=api"])
def test_page__newest_first__read_off_an_index_without_sorting(client, superuser, query):
    """Unfiltered or filtered by source, a page of the log is read off an index in order; before,
    PostgreSQL read every matching entry (300-550 ms at 371k entries) to show 50."""
    entries(10, source="api")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL + query)
    assert response.status_code == 200
    page_query = next(q["sql"] for q in queries if q["sql"].startswith('SELECT "audit_auditentry"."id"'))

    plan = explain_without_scans_or_sorts(page_query)

    assert ("auditentry_source_newest" if query else "auditentry_newest_first") in plan
    assert "Sort" not in plan


def test_export_csv__still_lists_the_filtered_log(client, superuser):
    entries(3, source="api")
    entries(2, source="task")

    response = client.get(reverse("admin:audit_auditentry_export") + "?source__exact=task")

    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert len(lines) == 1 + 2


def test_export_csv__a_cell_a_spreadsheet_would_run__written_as_text(client, superuser):
    entry = entries(1)[0]
    entry.reason = '=HYPERLINK("http://evil.example")'
    entry.save()

    response = client.get(reverse("admin:audit_auditentry_export"))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    assert '"\'=HYPERLINK(""http://evil.example"")"' in body


def test_audit_log__a_role__sees_only_changes_to_what_it_may_view(client, demo):
    # Given changes to customers, to who may grant a feature, and to a staff account's roles
    support = User.objects.get(username="support")
    with change_context(actor=None, reason="One-off grant for a test", source="shell"):
        FeatureUserPermission.objects.create(
            content_object=Feature.objects.get(key="max-members"),
            user=support,
            permission=Permission.objects.get(codename="grant_feature"),
        )
        User.objects.get(username="sales").groups.clear()
    assert {"customer", "featureuserpermission", "user"} <= set(
        AuditEntry.objects.values_list("content_type__model", flat=True)
    )

    # When Support and a catalog admin open the audit log
    client.force_login(support)
    seen_by_support = client.get(URL)
    client.force_login(User.objects.get(username="catalog"))
    seen_by_catalog = client.get(URL)

    # Then Support sees the customers' history, not who was granted what, roles or keys
    shown = {e.content_type.model for e in seen_by_support.context["cl"].queryset}
    assert "customer" in shown
    assert not {"featureuserpermission", "user", "apikey"} & shown
    # and may pick only themselves in the user filter; the catalog admin sees the grant
    user_filter = re.search(r'<select[^>]*name="user__id__exact".*?</select>', text(seen_by_support), re.S)
    assert [
        o
        for o in re.findall(r"<option[^>]*>([^<]*)</option>", user_filter.group(0))
        if o.strip() and o != "All"
    ] == ["support"]
    assert "featureuserpermission" in {e.content_type.model for e in seen_by_catalog.context["cl"].queryset}


# --- what the log shows and how it is filtered ------------------------------------------------


def test_customer_filter__external_id__lists_its_subscriptions_addons_and_overrides_only(client, superuser):
    override = f.OverrideFactory(subscription__customer__external_id="acme")
    addon = f.SubscriptionAddonFactory(subscription=override.subscription)
    f.OverrideFactory(subscription__customer__external_id="someone-else")

    response = client.get(URL + "?customer=acme")

    shown = {(e.content_type.model, e.object_id) for e in response.context["cl"].result_list}
    subscription = override.subscription
    assert shown == {
        ("customer", str(subscription.customer_id)),
        ("subscription", str(subscription.pk)),
        ("subscriptionaddon", str(addon.pk)),
        ("override", str(override.pk)),
    }


def test_customer_filter__override_deleted_since__still_listed(client, superuser):
    from toolkit.change_context import change_context

    override = f.OverrideFactory(subscription__customer__external_id="acme")
    override_id = override.pk
    with change_context(actor=None, reason="Ended early.", source="shell"):
        override.delete()

    response = client.get(URL + "?customer=acme")

    overrides = [e for e in response.context["cl"].result_list if e.content_type.model == "override"]
    assert {(e.object_id, e.action) for e in overrides} == {(str(override_id), "+"), (str(override_id), "-")}


def test_customer_history__subscription_and_override_changes__listed_with_a_link_to_the_audit_log(
    client, superuser
):
    override = f.OverrideFactory(
        subscription__customer__external_id="acme", subscription__external_id="sub-acme"
    )
    customer = override.subscription.customer

    response = client.get(reverse("admin:subscriptions_customer_history", args=[customer.pk]))

    page = text(response)
    assert "sub-acme" in page and str(override) in page
    assert f'href="{URL}?customer=acme"' in page


def test_model_filter__offers_only_models_that_keep_a_history(client, superuser):
    response = client.get(URL)

    page = text(response)
    model_filter = re.search(r'<select[^>]*name="content_type__id__exact".*?</select>', page, re.S).group(0)
    options = re.findall(r"<option[^>]*>([^<]*)</option>", model_filter)
    assert "Customer" in options and "Override" in options and "Scheduled change" in options
    assert "API key" in options and "User" in options  # recorded without a history table
    assert not {"Session", "Permission", "Content type", "Log entry"} & set(options)
    assert len(options) < 25


def test_filters__user_first(client, superuser):
    response = client.get(URL)

    specs = response.context["cl"].filter_specs
    assert specs[0].title == "user"


def test_reason__with_a_link__drawn_as_a_link_that_keeps_the_page_and_escapes_the_rest(client, superuser):
    entry = entries(1)[0]
    entry.reason = "See https://tickets.example/T-1 <b>now</b>"
    entry.save()

    response = client.get(URL)

    page = response.content.decode()
    link = re.search(r'<a [^>]*href="https://tickets.example/T-1"[^>]*>', page).group(0)
    assert 'rel="noopener noreferrer nofollow"' in link and "underline" in link
    assert "&lt;b&gt;now&lt;/b&gt;" in page


def test_addon_entry__says_which_subscription_it_belongs_to(client, superuser):
    f.SubscriptionAddonFactory(subscription__external_id="sub-acme", addon__key="extra-seats")

    response = client.get(
        URL + "?content_type__id__exact=" + str(ContentType.objects.get(model="subscriptionaddon").pk)
    )

    assert "1 × extra-seats on sub-acme" in " ".join(text(response).replace("</span>", "").split()).replace(
        '<span class="text-font-subtle-light">', ""
    )


def test_entry_without_a_user__says_system(client, superuser):
    entries(1)

    response = client.get(URL)

    row = re.search(r'<td class="field-who[^"]*"[^>]*>(.*?)</td>', text(response), re.S)
    assert row.group(1).strip() == "system"


def test_dates__one_format_with_utc(client, superuser):
    entry = entries(1)[0]
    entry.history_date = timezone.make_aware(timezone.datetime(2026, 12, 26, 23, 0))
    entry.save()

    response = client.get(URL)

    assert "2026-12-26 23:00 UTC" in text(response)


def test_changes__booleans_and_lists__read_as_words(client, superuser):
    entry = entries(1)[0]
    entry.changes = [
        {"field": "via tags", "old": None, "new": True},
        {"field": "tags", "old": [], "new": ["Product", "Sales"]},
    ]
    entry.save()

    response = client.get(URL)

    changes = re.search(r'data-testid="changes">(.*?)</ul>', text(response), re.S).group(1)
    words = " ".join(re.sub(r"<[^>]+>", " ", changes).split())
    assert words == "via tags : yes tags : none → Product, Sales"
