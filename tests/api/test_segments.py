"""Segment endpoints: name, tags, explicit lists and rules, replaced as a whole
by PUT, touched only where they differ."""

from __future__ import annotations

import pytest

from segments.models import Condition, Segment, SegmentMember
from tests.audit_trail import history_rows

pytestmark = pytest.mark.django_db

EUROPE = {
    "name": "Europe",
    "tags": ["product"],
    "included": ["acme"],
    "excluded": ["globex"],
    "rules": [
        {"conditions": [{"attribute": "country", "op": "in", "value": ["DE", "FR"]}]},
        {
            "conditions": [
                {"attribute": "plan_rank", "op": "gte", "value": 30},
                {"attribute": "status", "op": "eq", "value": "active"},
            ]
        },
    ],
}


def test_segment_put__creates_201__same_body_again_no_history(demo, api):
    created = api.put("segments/europe", EUROPE)
    rows = history_rows()
    again = api.put("segments/europe", EUROPE)

    assert created.status_code == 201
    assert created.json() == {"key": "europe", "description": "", **EUROPE}
    assert again.status_code == 200
    assert history_rows() == rows


def test_segment_put__replaces_lists_and_rules(demo, api):
    api.put("segments/europe", EUROPE)

    response = api.put(
        "segments/europe",
        {"name": "Europe", "rules": [{"conditions": [{"attribute": "country", "op": "eq", "value": "IT"}]}]},
    )

    assert response.status_code == 200
    assert (response.json()["included"], response.json()["excluded"], response.json()["tags"]) == ([], [], [])
    assert list(Condition.objects.filter(segment__key="europe").values_list("attribute", "op", "value")) == [
        ("country", "eq", "IT")
    ]


def test_segment_patch__lists_only(demo, api):
    response = api.patch("segments/beta", {"excluded": ["northwind"]})

    assert response.status_code == 200
    assert response.json()["included"] == ["acme", "contoso"]
    assert response.json()["excluded"] == ["northwind"]


def test_segment_get_and_list(demo, reader):
    beta = reader.get("segments/beta").json()
    keys = [s["key"] for s in reader.get("segments").json()["results"]]

    assert beta["included"] == ["acme", "contoso"]
    assert keys == ["basic-or-higher", "beta"]
    assert reader.get("segments/basic-or-higher").json()["rules"] == [
        {"conditions": [{"attribute": "plan_rank", "op": "gte", "value": 10}]}
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"included": ["nobody"]}, "included"),
        ({"included": ["acme"], "excluded": ["acme"]}, "excluded"),
        ({"tags": ["nope"]}, "tags"),
        ({"rules": [{"conditions": [{"attribute": "colour", "op": "eq", "value": "red"}]}]}, "rules"),
        ({"rules": [{"conditions": [{"attribute": "plan_rank", "op": "gte", "value": "ten"}]}]}, "rules"),
        ({"rules": [{"conditions": []}]}, "rules"),
        ({"rules": [{"conditions": [{"attribute": "country", "op": "near", "value": "DE"}]}]}, "rules"),
        ({"rules": [{"match": "all"}]}, "rules"),
        ({"members": []}, "members"),
    ],
)
def test_segment_put__invalid__400_and_nothing_changes(demo, api, change, field):
    rows = history_rows()

    response = api.put("segments/europe", {**EUROPE, **change})

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert history_rows() == rows
    assert not Segment.objects.filter(key="europe").exists()


def test_segment_put__a_later_part_failing__rolls_back_the_earlier_ones(demo, api):
    rows = history_rows()

    # Name and lists are valid and written first; the clash is found by the lists service.
    response = api.put("segments/beta", {"name": "Renamed", "included": ["acme"], "excluded": ["acme"]})

    assert response.status_code == 400
    assert Segment.objects.get(key="beta").name == "Common beta users"
    assert SegmentMember.objects.filter(segment__key="beta").count() == 2
    assert history_rows() == rows


def test_segment__product_may_edit_beta_but_not_basic_or_higher(demo, api_for):
    from django.contrib.auth.models import User

    product = api_for(User.objects.get(username="product"), "write")

    assert product.patch("segments/beta", {"included": ["contoso"]}).status_code == 200
    assert product.patch("segments/basic-or-higher", {"name": "Anyone"}).status_code == 403
