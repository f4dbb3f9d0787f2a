"""The dashboard's filters, read from the query string: the same on the page, in its CSV
exports and on a feature's Reporting tab, so an export always lists what the page shows."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from urllib.parse import urlencode

from django.http import QueryDict

NO_PLAN = "-"  # the plan filter's value for customers without a live subscription

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """Plan (a plan key, or NO_PLAN), market (a customer's country), tag (of the feature),
    and one feature (its Reporting tab). Empty means no filter."""

    plan: str = ""
    country: str = ""
    tag: str = ""
    feature: str = ""

    @classmethod
    def from_query(cls, query: QueryDict | dict) -> ReportFilters:
        """The filters of a request; a value that could not be a key is ignored, so a forged
        query string filters nothing rather than failing."""
        plan = (query.get("plan") or "").strip()
        country = (query.get("country") or "").strip().upper()
        tag = (query.get("tag") or "").strip()
        feature = (query.get("feature") or "").strip()
        return cls(
            plan=plan if plan == NO_PLAN or _SLUG.match(plan) else "",
            country=country if _COUNTRY.match(country) else "",
            tag=tag if _SLUG.match(tag) else "",
            feature=feature if _SLUG.match(feature) else "",
        )

    def query(self, **changes: str) -> str:
        """The filters as a query string (without "?"), with `changes` applied."""
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        return urlencode({name: value for name, value in values.items() if value})

    @property
    def customer_filtered(self) -> bool:
        """Whether plan or market narrows the customers counted."""
        return bool(self.plan or self.country)
