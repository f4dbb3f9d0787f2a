"""Revision bumps (toolkit.revisions): several in one round trip move each as one bump would."""

from __future__ import annotations

from django.core.cache import cache

from toolkit import revisions


def test_bump_many__three_keys__each_moved_once_and_observed(monkeypatch):
    keys = [revisions.customer_key(name) for name in ("acme", "globex", "initech")]
    for key in keys:
        revisions.bump(key)
    before = cache.get_many(keys)
    seen = []
    monkeypatch.setattr(revisions, "_observers", [lambda key, value: seen.append((key, value))])

    revisions.bump_many(keys)

    after = cache.get_many(keys)
    assert [after[key] - before[key] for key in keys] == [1, 1, 1]
    assert seen == [(key, after[key]) for key in keys]


def test_bump_many__unknown_key__starts_from_the_clock():
    key = revisions.customer_key("never-seen")
    revisions.bump_many([key, revisions.customer_key("other")])
    assert cache.get(key) > revisions.fresh_stamp() - 60_000
