"""The benchmark's targets table (bench/report.py): a ratio target is judged against the bare
view asked as the checks are, and also shows the ratio to the bare view at one fixed URL."""

from __future__ import annotations

from bench import report


def phase(customers: int, check: list[float], fixed: list[float]) -> dict:
    def endpoint(ratios: list[float]) -> dict:
        return {"ratio": sorted(ratios)[len(ratios) // 2], "ratios": ratios}

    load = {
        "bare view": endpoint([1.0] * len(check)),
        report.FIXED_URL: endpoint(fixed),
        **{
            name: endpoint(check)
            for name in (
                "one feature, memory tier",
                "all features, memory tier",
                "one feature, Redis tier",
                "all features, Redis tier",
                "all features, 304",
            )
        },
    }
    return {"customers": customers, "load": load}


def test_ratio_targets__met_against_the_bare_view__and_shown_against_the_fixed_url_too():
    rows = report._ratio_targets([phase(1000, [0.90, 0.88, 0.92], [1.05, 1.10, 1.00])])

    target, measured, met = rows[1]
    assert target == "warm check ≥ 0.85× bare, memory tier (all features)"
    # Per round 0.90/1.05, 0.88/1.10, 0.92/1.00: the median is 0.857.
    assert measured == "1k: 0.90× (to the bare view at one fixed URL: 0.86×)"
    assert met == "yes"


def test_ratio_targets__missed_when_one_size_is_under_the_floor():
    small = phase(1000, [0.90, 0.90, 0.90], [1.0, 1.0, 1.0])
    large = phase(100_000, [0.84, 0.83, 0.86], [1.0, 1.0, 1.0])

    rows = report._ratio_targets([small, large])

    assert rows[0][1] == "1k: 0.90×, 100k: 0.84× (to the bare view at one fixed URL: 0.90×, 0.84×)"
    assert rows[0][2] == "no"


def test_ratio_targets__an_older_run_without_the_fixed_url__shows_the_ratios_alone():
    old = phase(1000, [0.90, 0.88, 0.92], [1.0, 1.0, 1.0])
    del old["load"][report.FIXED_URL]

    assert report._ratio_targets([old])[0][1] == "1k: 0.90×"
