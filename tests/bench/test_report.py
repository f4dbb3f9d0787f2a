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


def race(**changes) -> dict:
    figures = {
        "customer": "meter-race",
        "feature": "bench-api-calls",
        "limit": 1000,
        "last": 100,
        "consumers": 32,
        "servers": 2,
        "attempted": 132,
        "allowed": 100,
        "refused": 32,
        "errors": 0,
        "each_count_once": True,
        "seconds": 1.5,
        "after": [{"status": 200, "allowed": False, "used": 1000}] * 2,
        "rows": 101,
        "rows_sum": 1000,
        "exact": True,
    }
    return {**figures, **changes}


def test_ratio_targets__consume_and_metered_check__judged_against_0_6():
    measured = phase(1000, [0.90, 0.88, 0.92], [1.0, 1.0, 1.0])
    measured["load"][report.CONSUME] = {"ratio": 0.62, "ratios": [0.61, 0.62, 0.70]}
    measured["load"][report.METERED_CHECK] = {"ratio": 0.58, "ratios": [0.58, 0.50, 0.60]}

    rows = {target: (shown, met) for target, shown, met in report._ratio_targets([measured])}

    assert rows["consume ≥ 0.6× bare, memory tier (no idempotency key)"] == (
        "1k: 0.62× (to the bare view at one fixed URL: 0.62×)",
        "yes",
    )
    assert rows["metered check ≥ 0.6× bare, memory tier (one metered feature)"][1] == "no"


def test_metered_targets__the_race__allowed_over_attempted_and_the_rows():
    (row,) = report._metered_targets([{"customers": 1000, "race": race()}])

    assert row == [
        "hard limit under a race: 32 consumers on 2 servers, allowed = the 100 units left, rows add up to "
        "the limit",
        "allowed / attempted 100 / 132; rows 1000 of 1000",
        "yes",
    ]


def test_metered_targets__a_race_that_let_one_too_many_through__missed():
    leaked = race(allowed=101, attempted=133, rows_sum=1001, each_count_once=False, exact=False)

    (row,) = report._metered_targets([{"customers": 1000, "race": leaked}])

    assert row[1:] == ["allowed / attempted 101 / 133; rows 1001 of 1000", "no"]
    assert "**101 / 133**" in report._race(leaked)


def test_metered_targets__warm_consume_and_metered_check__their_round_trips():
    def cost(queries: int, round_trips: int) -> dict:
        return {"queries": queries, "round_trips": round_trips}

    costs = {
        "consume: warm, process memory": cost(2, 1),
        "consume with an idempotency key: warm, process memory": cost(2, 2),
        "metered check: warm, process memory": cost(0, 1),
    }

    consume, check = report._metered_targets([{"customers": 1000, "metered_costs": costs}])

    assert consume == ["warm consume: 1 Redis round trip (memory tier)", "2 round trip, 2 SQL", "no"]
    assert check == [
        "warm metered check: 0 SQL, 1 Redis round trip (memory tier)",
        "0 SQL, 1 round trip",
        "yes",
    ]
