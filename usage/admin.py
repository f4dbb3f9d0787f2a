"""Usage in the admin: every accepted consumption and report, read-only (they are facts
applications reported, not records anyone edits), and two CSV exports: the changelist's rows
as filtered, and one customer's usage per feature and day of the current period (linked from
the customer page's "Usage this period")."""

from __future__ import annotations

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from unfold.admin import ModelAdmin

from config.admin import CountLimitedChangelist
from subscriptions.admin import MeteredFeatureFilter, link_to_customer, resolve
from subscriptions.models import Customer
from toolkit.spreadsheet import safe_cell
from usage.models import Consumption
from usage.selectors import current_usage


class _Echo:
    """A file that hands back what is written: csv.writer then yields each line to stream."""

    def write(self, value):
        return value


class CustomerFilter(admin.SimpleListFilter):
    """One customer's rows (`?customer=<id>`, as the customer page links here). It offers only
    the customer chosen: a list of every customer would be far too long to pick from."""

    title = "customer"
    parameter_name = "customer"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value or not value.isdigit():
            return []
        return list(Customer.objects.filter(pk=value).values_list("pk", "external_id"))

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(customer_id=value) if value.isdigit() else queryset.none()


@admin.register(Consumption)
class ConsumptionAdmin(CountLimitedChangelist, ModelAdmin):
    """Every accepted consumption and report, newest first. The table grows with every call
    of the usage endpoints: the list is ordered by id (its primary key index, the order rows
    were written in), counts only as far as anyone pages, and searches exact values only
    (a customer's external id, an idempotency key), which indexes answer."""

    list_display = [
        "happened_at",
        "customer_link",
        "feature",
        "quantity_shown",
        "used_after_shown",
        "limit_shown",
        "kind",
        "period_start",
        "idempotency_key",
    ]
    list_filter = [CustomerFilter, MeteredFeatureFilter, "kind"]
    search_fields = ["=customer__external_id", "=idempotency_key"]
    search_help_text = "A customer's external id, or an idempotency key, exactly."
    list_select_related = ["customer", "feature"]
    ordering = ["-id"]
    show_full_result_count = False
    list_per_page = 50
    change_list_template = "admin/usage/consumption/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_link(self, obj):
        return link_to_customer(obj)

    @admin.display(description="Quantity", ordering="quantity")
    def quantity_shown(self, obj):
        return f"{obj.quantity:,}"

    @admin.display(description="Period's total after it")
    def used_after_shown(self, obj):
        return f"{obj.used_after:,}"

    @admin.display(description="Limit then")
    def limit_shown(self, obj):
        return "unlimited" if obj.limit is None else f"{obj.limit:,}"

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv), name="usage_consumption_export"),
            path(
                "customer/<int:customer_id>/usage.csv",
                self.admin_site.admin_view(self.customer_csv),
                name="usage_consumption_customer_csv",
            ),
            *super().get_urls(),
        ]

    def export_csv(self, request):
        """The changelist's rows, as filtered and searched, as CSV, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = self.get_changelist_instance(request).get_queryset(request).iterator(chunk_size=2000)
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(
                [
                    "happened_at",
                    "customer",
                    "feature",
                    "quantity",
                    "used_after",
                    "limit",
                    "kind",
                    "period_start",
                    "idempotency_key",
                    "recorded_at",
                ]
            )
            for row in rows:
                yield writer.writerow(
                    safe_cell(cell)
                    for cell in [
                        row.happened_at.isoformat(),
                        row.customer.external_id,
                        row.feature.key,
                        row.quantity,
                        row.used_after,
                        "unlimited" if row.limit is None else row.limit,
                        row.kind,
                        row.period_start.isoformat(),
                        row.idempotency_key,
                        row.created_at.isoformat(),
                    ]
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="entitle-consumptions.csv"'
        return response

    def customer_csv(self, request, customer_id: int):
        """One customer's usage of each metered feature, per day of its current period: used
        that day and in the period up to it, beside the period's limit; from the period's first
        day to today (UTC)."""
        if not (self.has_view_permission(request) and request.user.has_perm("subscriptions.view_customer")):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=customer_id)
        resolved = resolve(customer)
        now = resolved.now
        usage = current_usage(customer.pk, resolved.resolution.answers.values(), resolved.catalog.feature_ids)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="entitle-usage-{customer.pk}-{now:%Y%m%d-%H%M}.csv"'
        )
        writer = csv.writer(response)
        writer.writerow(
            [
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
        )
        for feature in usage:
            so_far = 0
            for day, count in feature.days:
                if day > now.date():
                    break
                so_far += count
                writer.writerow(
                    safe_cell(cell)
                    for cell in [
                        customer.external_id,
                        feature.feature_key,
                        day.isoformat(),
                        count,
                        so_far,
                        "unlimited" if feature.limit is None else feature.limit,
                        "hard" if feature.hard else "soft",
                        feature.period_start.isoformat(),
                        feature.resets_at.isoformat(),
                    ]
                )
        return response
