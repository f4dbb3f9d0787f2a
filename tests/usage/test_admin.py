"""Usage in the admin, driven with the test client as the demo's roles: the customer page's
"Usage this period", Support's top-up (through the service, refused in its words, never edited
or deleted), and the usage exports (a customer's days, the consumptions list)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from catalog.models import Feature
from subscriptions import services
from subscriptions.models import Customer, TopUp
from tests.admin_pages import text
from tests.reporting.conftest import csv_rows
from tests.usage.test_selectors import meter_of, record_usage
from usage import meter
from usage.models import Consumption

pytestmark = pytest.mark.django_db

REASON = "Ticket SUP-77: launch week, https://tickets.example/SUP-77"

# Queries of a customer page with its usage section, for Support (who may top up): session,
# user, the customer, the user's permissions (two), the subscriptions inline, the catalog
# (six), the customer's subscriptions, add-ons, overrides, top-ups and segment lists (five),
# the coming overrides, the usage (one), and the features Support may top up (one): 20,
# pinned one above. It does not grow with the number of consumptions or days.
CUSTOMER_PAGE_QUERIES = 21


def login(client, username: str) -> User:
    user = User.objects.get(username=username)
    client.force_login(user)
    return user


def _customer(external_id: str) -> Customer:
    return Customer.objects.get(external_id=external_id)


def customer_url(external_id: str) -> str:
    return reverse("admin:subscriptions_customer_change", args=[_customer(external_id).pk])


class _UsageReader(HTMLParser):
    """The usage section's rows: {feature: {data-testid: text}} and each row's level."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.levels: dict[str, str] = {}
        self._feature: str | None = None
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tbody" and "data-feature" in attrs:
            self._feature = attrs["data-feature"]
            self.rows[self._feature] = {}
            self.levels[self._feature] = attrs.get("data-level", "")
        if self._feature is not None and tag not in ("br", "img", "input"):
            testid = attrs.get("data-testid")
            self._open.append((tag, testid))
            if testid:
                self.rows[self._feature].setdefault(testid, "")
            if tag == "a" and testid == "top-up":
                self.rows[self._feature]["top-up-href"] = attrs["href"]

    def handle_endtag(self, tag):
        if self._feature is None:
            return
        if tag == "tbody":
            self._feature = None
            self._open = []
        elif self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._feature is None:
            return
        for _tag, testid in self._open:
            if testid:
                current = self.rows[self._feature][testid]
                self.rows[self._feature][testid] = " ".join(f"{current} {data}".split())


def usage_rows(response) -> _UsageReader:
    reader = _UsageReader()
    page = response.content.decode()
    start = page.index('data-testid="metered-usage"')
    reader.feed(page[start - 5 :])
    return reader


# --- the customer page ---------------------------------------------------------------------------


def test_customer_page__support__usage_this_period_against_the_limit_with_a_top_up(client, demo):
    # Given northwind (basic: api-calls 1,000 a billing month, hard) at 85 % of its limit
    record_usage("northwind", "api-calls", 300, at=meter_of(_customer("northwind"), "api-calls").period_start)
    record_usage("northwind", "api-calls", 550)
    login(client, "support")

    # When support opens the customer
    response = client.get(customer_url("northwind"))

    # Then "Usage this period" lists api-calls: used of the limit, what remains, marked near
    assert response.status_code == 200
    page = text(response)
    assert "Usage this period" in page
    usage = usage_rows(response)
    assert list(usage.rows) == ["api-calls"]
    row = usage.rows["api-calls"]
    assert (row["used"], row["limit"], row["remaining"], row["percent"]) == ("850", "1,000", "150", "85 %")
    assert row["level"] == "near the limit" and usage.levels["api-calls"] == "near"
    assert row["limit-type"] == "hard limit"
    resets = meter_of(_customer("northwind"), "api-calls").resets_at
    assert row["resets"] == f"{resets:%Y-%m-%d %H:%M} UTC"
    # the period's days as bars, the first and today's holding their usage
    assert 'data-type="bar"' in response.content.decode()
    # And support may top it up: the form opens with the customer and the feature chosen
    feature = Feature.objects.get(key="api-calls")
    assert row["top-up-href"] == (
        reverse("admin:subscriptions_topup_add")
        + f"?customer={_customer('northwind').pk}&feature={feature.pk}"
    )
    assert reverse("admin:usage_consumption_customer_csv", args=[_customer("northwind").pk]) in page


def test_customer_page__sales__sees_the_usage_but_no_top_up(client, demo):
    record_usage("northwind", "api-calls", 10)
    login(client, "sales")

    response = client.get(customer_url("northwind"))

    usage = usage_rows(response)
    assert usage.rows["api-calls"]["used"] == "10"
    assert "top-up" not in usage.rows["api-calls"]
    assert 'data-testid="top-up"' not in response.content.decode()


@pytest.mark.parametrize(
    ("external_id", "used", "shown"),
    [
        # soft limit passed: over, nothing remains
        (
            "acme",
            2_600_000,
            {"used": "2,600,000", "limit": "2,000,000", "remaining": "0", "percent": "130 %"},
        ),
        # unlimited: no remaining, no share
        ("globex", 5_000, {"used": "5,000", "limit": "unlimited", "remaining": "—", "percent": "—"}),
    ],
)
def test_customer_page__soft_limit_passed_and_unlimited__said_so(client, demo, external_id, used, shown):
    record_usage(external_id, "ai-tokens", used)
    login(client, "support")

    usage = usage_rows(client.get(customer_url(external_id)))

    row = usage.rows["ai-tokens"]
    assert {key: row[key] for key in shown} == shown
    if external_id == "acme":
        assert row["level"] == "over the limit"
        assert row["limit-type"] == "soft limit"
        assert "top-up-href" in row
    else:
        assert "level" not in row
        assert "top-up-href" not in row  # an unlimited answer has nothing to top up


def test_customer_page__no_metered_feature__says_so(client, demo):
    login(client, "support")

    response = client.get(customer_url("streamfan"))

    assert 'data-testid="no-metered-usage"' in response.content.decode()
    assert "streamfan has no metered feature, and used none this period." in text(response)


def test_customer_page__with_usage__within_pinned_queries_however_many_rows(
    client, demo, django_assert_max_num_queries
):
    # Given umbrella's two metered features used on many days of their periods
    umbrella = _customer("umbrella")
    start = meter_of(umbrella, "ai-tokens").period_start
    moments = [start + timedelta(hours=h) for h in range(0, 24 * 31, 5)]
    for moment in (m for m in moments if m < timezone.now()):
        record_usage("umbrella", "ai-tokens", 1000, at=moment)
    login(client, "support")
    url = customer_url("umbrella")
    client.get(url)  # warm the process-wide caches (content types, permissions)

    # When support opens it: a fixed number of queries
    with django_assert_max_num_queries(CUSTOMER_PAGE_QUERIES) as queries:
        response = client.get(url)
    many = len(queries)

    # Then the rows are all counted, and more rows add no query
    assert (
        usage_rows(response).rows["ai-tokens"]["used"]
        == f"{1000 * sum(m < timezone.now() for m in moments):,}"
    )
    record_usage("umbrella", "ai-tokens", 5)
    with django_assert_max_num_queries(many):
        client.get(url)


# --- top-ups -------------------------------------------------------------------------------------


def top_up(client, external_id: str, feature_key: str, amount: object, **fields):
    """Post the top-up form as a person fills it in: customer, feature, units and a reason."""
    return client.post(
        reverse("admin:subscriptions_topup_add"),
        {
            "customer": _customer(external_id).pk,
            "feature": Feature.objects.get(key=feature_key).pk,
            "amount": amount,
            "change_reason": REASON,
            **fields,
        },
    )


def test_top_up_form__support__offers_only_the_metered_features_it_may_grant(client, demo):
    login(client, "support")
    feature = Feature.objects.get(key="api-calls")

    response = client.get(
        reverse("admin:subscriptions_topup_add")
        + f"?customer={_customer('northwind').pk}&feature={feature.pk}"
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert sorted(form.fields["feature"].queryset.values_list("key", flat=True)) == ["ai-tokens", "api-calls"]
    assert form.initial["feature"] == str(feature.pk)
    assert "Reason for this change" in text(response)


def test_top_up__support__limit_raised_on_the_page_and_in_the_check_answer(
    client, demo, reader, django_capture_on_commit_callbacks
):
    # Given northwind at 900 of its 1,000 api-calls, and support
    record_usage("northwind", "api-calls", 900)
    support = login(client, "support")

    # When support tops it up by 500 with a reason
    with django_capture_on_commit_callbacks(execute=True):
        response = top_up(client, "northwind", "api-calls", 500)

    # Then it lands back on the customer page, where the limit is 1,500 for this period
    assert response.status_code == 302
    assert response["Location"] == customer_url("northwind")
    page = client.get(response["Location"])
    assert "Added 500 to northwind's api-calls limit" in text(page)
    row = usage_rows(page).rows["api-calls"]
    assert (row["limit"], row["remaining"], row["percent"], row["topped-up"]) == (
        "1,500",
        "600",
        "60 %",
        "incl. top-ups +500",
    )
    assert "topup 500" in text(page)  # the answer's parts in the resolved table
    # And the top-up is recorded with who and why, for the current period only
    topup = TopUp.objects.get()
    created = topup.history.get()
    assert (created.history_user, created.history_change_reason, created.source) == (support, REASON, "admin")
    assert topup.period_start == meter_of(_customer("northwind"), "api-calls").period_start
    # And applications checking api-calls are told the new limit at once
    answer = reader.get("customers/northwind/entitlements/api-calls")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["limit"], body["used"], body["remaining"]) == (1500, 900, 600)


@pytest.mark.parametrize(
    ("external_id", "feature_key", "message"),
    [
        ("streamfan", "api-calls", "streamfan does not have api-calls: there is no limit to top up."),
        ("globex", "ai-tokens", "globex has ai-tokens without limit already."),
    ],
)
def test_top_up__refused_by_the_service__its_message_on_the_form_nothing_saved(
    client, demo, external_id, feature_key, message
):
    login(client, "support")

    response = top_up(client, external_id, feature_key, 100)

    assert response.status_code == 200
    assert message in text(response)
    assert not TopUp.objects.exists()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"change_reason": "  "}, "This field is required."),
        ({"amount": 0}, "Ensure this value is greater than or equal to 1."),
        ({"amount": "lots"}, "Enter a whole number."),
    ],
)
def test_top_up__bad_input__refused_on_the_form(client, demo, fields, error):
    login(client, "support")

    response = top_up(client, "northwind", "api-calls", **{"amount": 100, **fields})

    assert response.status_code == 200
    assert error in text(response)
    assert not TopUp.objects.exists()


def test_top_up__forged_feature_support_may_not_grant__refused(client, demo):
    login(client, "support")

    response = top_up(client, "northwind", "max-members", 5)  # tagged for Sales, and not metered

    assert response.status_code == 200
    assert "Select a valid choice" in text(response)
    assert not TopUp.objects.exists()


def test_top_up__sales__may_not_add_one(client, demo):
    login(client, "sales")

    assert client.get(reverse("admin:subscriptions_topup_add")).status_code == 403
    assert top_up(client, "northwind", "api-calls", 100).status_code == 403
    assert not TopUp.objects.exists()


def test_top_up__once_made__listed_with_who_and_why_never_edited_or_deleted(client, demo):
    login(client, "support")
    top_up(client, "northwind", "api-calls", 250)
    topup = TopUp.objects.get()

    changelist = client.get(reverse("admin:subscriptions_topup_changelist"))
    change = client.get(reverse("admin:subscriptions_topup_change", args=[topup.pk]))
    forged = client.post(
        reverse("admin:subscriptions_topup_change", args=[topup.pk]),
        {"customer": topup.customer_id, "feature": topup.feature_id, "amount": 9999, "change_reason": "x"},
    )
    delete = client.get(reverse("admin:subscriptions_topup_delete", args=[topup.pk]))

    assert changelist.status_code == 200
    listed = text(changelist)
    assert "+250" in listed and "support" in listed and "Ticket SUP-77" in listed
    assert change.status_code == 200
    assert 'name="amount"' not in change.content.decode()  # shown read-only
    assert "Reason for this change" not in text(change)
    assert forged.status_code == 403
    assert delete.status_code == 403
    assert TopUp.objects.get().amount == 250


def test_top_up__audit_log__lists_it_with_the_reason(client, demo):
    login(client, "support")
    top_up(client, "northwind", "api-calls", 250)

    log = client.get(reverse("admin:audit_auditentry_changelist") + "?q=SUP-77")

    assert log.status_code == 200
    assert re.search(r"\+250 api-calls for northwind", text(log))
    assert "Ticket SUP-77: launch week" in text(log)


@pytest.mark.parametrize(
    ("changelist", "pin"),
    [("admin:subscriptions_topup_changelist", 8), ("admin:usage_consumption_changelist", 8)],
)
def test_changelists__many_rows__within_pinned_queries(
    client, demo, django_assert_max_num_queries, changelist, pin
):
    # Given 60 top-ups and 60 consumptions, each naming its customer, feature and author
    northwind, api_calls = _customer("northwind"), Feature.objects.get(key="api-calls")
    for n in range(60):
        services.topup_grant(
            customer=northwind,
            feature=api_calls,
            amount=n + 1,
            actor=None,
            reason=f"Goodwill {n}",
            source="shell",
        )
        record_usage("northwind", "api-calls", 1)
    login(client, "support")
    url = reverse(changelist)
    client.get(url)  # warm the process-wide caches

    # When support lists them: session, user, permissions (two), the count, the page's rows
    # (with their customers, features and authors), the features filter
    with django_assert_max_num_queries(pin):
        response = client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50


# --- exports and the consumptions list -----------------------------------------------------------


def test_customer_usage_csv__per_feature_and_day_up_to_today(client, demo):
    start = meter_of(_customer("northwind"), "api-calls").period_start
    record_usage("northwind", "api-calls", 300, at=start + timedelta(minutes=5))
    record_usage("northwind", "api-calls", 200)
    login(client, "sales")

    response = client.get(reverse("admin:usage_consumption_customer_csv", args=[_customer("northwind").pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = csv_rows(response)
    assert header == [
        "customer",
        "feature",
        "day",
        "used_that_day",
        "used_in_period",
        "limit",
        "limit_type",
        "period_start",
        "resets_at",
    ]
    assert {row[1] for row in rows} == {"api-calls"}
    today = timezone.now().date().isoformat()
    assert rows[0][2:5] == [start.date().isoformat(), "300", "300"]
    assert rows[-1][2:7] == [today, "200", "500", "1000", "hard"]
    assert len(rows) == (timezone.now().date() - start.date()).days + 1


def test_consumptions__customer_filter_and_csv__its_rows_with_formulas_quoted(client, demo):
    northwind = _customer("northwind")
    meter.report(meter_of(northwind, "api-calls"), 7, "=HYPERLINK(evil)")
    record_usage("contoso", "api-calls", 8)
    login(client, "support")
    url = reverse("admin:usage_consumption_changelist") + f"?customer={northwind.pk}"

    page = client.get(url)
    export = client.get(reverse("admin:usage_consumption_export") + f"?customer={northwind.pk}")

    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert header[:4] == ["happened_at", "customer", "feature", "quantity"]
    assert len(rows) == 1
    assert rows[0][1:5] == ["northwind", "api-calls", "7", "7"]
    assert rows[0][header.index("idempotency_key")] == "'=HYPERLINK(evil)"


def test_consumptions__read_only_for_everyone(client, demo):
    record_usage("northwind", "api-calls", 1)
    row = Consumption.objects.get()
    client.force_login(User.objects.get(username="admin"))

    assert client.get(reverse("admin:usage_consumption_add")).status_code == 403
    assert (
        client.post(reverse("admin:usage_consumption_delete", args=[row.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert client.get(reverse("admin:usage_consumption_change", args=[row.pk])).status_code == 200
    assert Consumption.objects.count() == 1
