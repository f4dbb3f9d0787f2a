"""One run's results as the Markdown tables of BENCHMARKS.md, with each target of the
benchmark marked met or missed from the figures measured."""

from __future__ import annotations

import statistics
from typing import Any

TARGET_MEMORY, TARGET_REDIS, TARGET_304, TARGET_METERED = 0.85, 0.6, 0.6, 0.6
FIXED_URL = "bare view, one fixed URL"  # the old ceiling's endpoint (bench.run.SCENARIOS)
# The metered endpoints (bench.run.SCENARIOS), on the customers who hold the metered features.
CONSUME = "consume, memory tier"
CONSUME_KEYED = "consume with an idempotency key, memory tier"
METERED_CHECK = "metered check, memory tier"
SEED_COLUMNS = {
    "customers": "Customer",
    "subscriptions": "Subscription",
    "add-ons": "SubscriptionAddon",
    "overrides": "Override",
    "list entries": "SegmentMember",
    "history rows": "history rows",
    "audit entries": "AuditEntry",
}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _n(value: int) -> str:
    return f"{value // 1000}k" if value >= 1000 and value % 1000 == 0 else str(value)


def _load(values: list[float]) -> str:
    return " ".join(f"{x:.1f}" for x in values)


def markdown(results: dict[str, Any]) -> str:
    phases = results["phases"]
    out = [f"## Run {results['started']} ({results.get('seconds', 0):.0f} s)", "", _machine(results), ""]
    out += ["### Seeding", "", _seeding(phases), ""]
    out += [
        "### Throughput (medians over rounds; × bare = req/s ÷ the mean of the bare view's runs "
        "just before and after, the bare view asked for the same customers with the same header as "
        "the checks; server CPU = the gunicorn workers' user + system time per request; "
        "again = runs measured again because one worker held all of wrk's connections)",
        "",
        _throughput(phases),
        "",
    ]
    out += ["### SQL queries, Redis round trips and commands per check (in process)", "", _costs(phases), ""]
    if phases and all("metered_costs" in p for p in phases):
        out += [
            "### SQL queries, Redis round trips and commands per consume and metered check (in process)",
            "",
            _costs(phases, "metered_costs"),
            "",
        ]
    last = phases[-1] if phases else {}
    if "race" in last:
        out += [f"### The hard-limit race at N = {_n(last['customers'])}", "", _race(last["race"]), ""]
    if "plan_change" in last:
        out += [
            f"### A plan change at N = {_n(last['customers'])}",
            "",
            _plan_change(last["plan_change"]),
            "",
        ]
    if "admin" in last:
        out += [f"### Admin at N = {_n(last['customers'])} (median of 5 loads after a first)", ""]
        out += [_admin(last["admin"]), "", _dropdowns(last.get("dropdowns")), ""]
    if "import" in last:
        out += ["### An import", "", _import(last["import"]), ""]
    if "sweep" in last:
        out += ["### Scheduled changes", "", _sweep(last["sweep"], last.get("sweep_profile", {})), ""]
    out += ["### Targets", "", _table(["target", "measured", "met"], targets(phases)), ""]
    return "\n".join(out)


def _machine(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Linux {m['kernel']}; Python {m['python']}, "
        f"Django {m['django']}, gunicorn {m['gunicorn']} ({s['workers']} workers × "
        f"{s['worker_threads']} gthread threads), PostgreSQL {m['postgres']}, Redis {m['redis']}, "
        f"{m['wrk']}. wrk: {s['threads']} threads, {s['connections']} connections, {s['duration']} s per "
        f"run, {s['rounds']} rounds; working set {s['hot']} customers."
    )


def _seeding(phases: list[dict]) -> str:
    rows = [
        [
            _n(p["customers"]),
            p["seed"]["seconds"],
            *(p["rows"][key] for key in SEED_COLUMNS.values()),
            _load(p["load_before"]),
        ]
        for p in phases
    ]
    return _table(["N", "seconds", *SEED_COLUMNS, "load average before"], rows)


def _throughput(phases: list[dict]) -> str:
    rows = [
        [
            _n(p["customers"]),
            name,
            f"{r['rps']:.0f}",
            r["p50_ms"],
            r["p99_ms"],
            f"{r['ratio']:.2f}",
            " ".join(f"{x:.2f}" for x in r["ratios"]),
            r.get("server_cpu_us", "–"),
            r.get("slow_mode_runs", "–"),
            r["errors"],
        ]
        for p in phases
        for name, r in p.get("load", {}).items()
    ]
    header = ["N", "endpoint", "req/s", "p50 ms", "p99 ms", "× bare", "per round", "server CPU µs", "again"]
    return _table([*header, "errors"], rows)


def _costs(phases: list[dict], part: str = "check_costs") -> str:
    names = list(phases[0][part]) if phases else []
    rows = []
    for name in names:
        row = [name]
        for p in phases:
            c = p[part].get(name)
            row.append(
                f"{c['queries']} / {c['round_trips']} / {c['commands']} / {c['ms_median']}" if c else "–"
            )
        rows.append(row)
    header = [f"N={_n(p['customers'])}: SQL / round trips / commands / ms" for p in phases]
    return _table(["check", *header], rows)


def _plan_change(pc: dict[str, Any]) -> str:
    return (
        f"`PUT /api/v1/items/{pc['plan']}/entitlements/{pc['feature']}` {pc['old']} → {pc['new']}; "
        f"{pc['customers_on_plan']} customers hold a live subscription on {pc['plan']}. The write took "
        f"{pc['write_ms']} ms ({pc['write_queries']} SQL queries) and sent these Redis commands: "
        f"{pc['write_redis_commands']} ({pc['write_redis_deletes']} deletes). Then {pc['sampled']} "
        "customers whose answer came from the plan, warm in the server's memory before, were asked "
        f"one after another: {pc['stale_answers_after_commit']} answered the old value first (each "
        f"was asked again until it showed the new one: the last did {pc['stale_seen_after_ms_max']} ms "
        f"after the commit; {pc['never_seen']} never did); the first check after the write "
        f"took {pc['first_check_after_ms_median']} ms median ({pc['first_check_after_ms_max']} ms max: "
        f"each is a rebuild); asking all {pc['sampled']} one after another took "
        f"{pc['all_sampled_seen_ms']} ms."
    )


def _race(race: dict[str, Any]) -> str:
    after = ", ".join(
        f"{'allowed' if a['allowed'] else 'refused'} at {a['used']}"
        if a["status"] == 200
        else f"{a['status']}"
        for a in race["after"]
    )
    return (
        f"`{race['customer']}` holds {race['feature']} with a hard limit of {race['limit']} and was brought "
        f"to its last {race['last']} units; then {race['consumers']} consumers, spread over the "
        f"{race['servers']} servers, each consumed 1 at a time until refused. Allowed / attempted: "
        f"**{race['allowed']} / {race['attempted']}** ({race['refused']} refused, {race['errors']} errors, "
        f"{race['seconds']} s); each count up to the limit given once: {_yes(race['each_count_once'])}. "
        f"One more consume on each server: {after}. Rows in PostgreSQL for the period: {race['rows']}, "
        f"adding up to {race['rows_sum']} (the limit: {race['limit']})."
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _admin(admin: dict[str, dict]) -> str:
    rows = [
        [who, name, r["status"], r["median_ms"], r["max_ms"], r["first_ms"], r["queries"]]
        for who, pages in admin.items()
        for name, r in pages.items()
    ]
    return _table(["user", "page", "status", "median ms", "max ms", "first ms", "queries"], rows)


def _dropdowns(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    w = d["worst"]
    text = (
        f"Admin forms: {d['pages']} pages (every model's add, change and changelist page); the largest "
        f"dropdown has {w['largest_select']} options ({w['model']} {w['view']}, `{w['select']}`); pages "
        f"with one over 1000: {len(d['over_1000'])}."
    )
    if d.get("slowest"):
        slowest = ", ".join(f"{p['model']} {p['view']} {p['ms']:.0f} ms" for p in d["slowest"])
        text += f" Slowest pages (one load each): {slowest}."
    if d.get("failed"):
        failed = ", ".join(f"{p['model']} {p['view']} ({p['status']})" for p in d["failed"])
        text += f" Pages that did not answer 200: {failed}."
    return text


def _import(im: dict[str, Any]) -> str:
    preview, apply = im["preview"], im["apply"]
    return (
        f"A CSV of {im['rows']} item entitlements (every item × every feature; {im['entitlements before']} "
        f"existed), as a superuser: the preview took {preview['seconds']} s "
        f"({preview['counts']}), applying it {apply['seconds']} s (applied: {apply['applied']}, "
        f"{im['history rows']} history rows), then rolled back."
    )


def _sweep(sw: dict[str, Any], pr: dict[str, Any]) -> str:
    failures = f", failures by status {sw['failures_by_status']}" if sw["failures_by_status"] else ""
    return (
        f"{sw['due']} due changes swept by {sw['workers']} processes at once: {sw['processed']} processed "
        f"in {sw['seconds']} s ({sw['per_second']}/s); outcome {sw['states']}{failures}.\n\n"
        f"One change, applied alone (profile of {pr.get('processed')}): {pr.get('queries_per_change')} SQL "
        f"queries, {pr.get('ms_per_change')} ms; by statement: {pr.get('by_statement_per_change')}."
    )


# --- targets --------------------------------------------------------------------------------------


def targets(phases: list[dict]) -> list[list[str]]:
    if not phases:
        return []
    rows = _ratio_targets(phases) + _count_targets(phases) + _metered_targets(phases)
    if len(phases) > 1 and all("load" in p for p in phases):
        rows.append(_same_at_scale(phases[0], phases[-1]))
    rows += _extra_targets(phases[-1])
    return rows


def _ratio_targets(phases: list[dict]) -> list[list[str]]:
    rows = []
    for target, name, floor in (
        ("warm check ≥ 0.85× bare, memory tier (one feature)", "one feature, memory tier", TARGET_MEMORY),
        ("warm check ≥ 0.85× bare, memory tier (all features)", "all features, memory tier", TARGET_MEMORY),
        ("warm check ≥ 0.6× bare, Redis tier (one feature)", "one feature, Redis tier", TARGET_REDIS),
        ("warm check ≥ 0.6× bare, Redis tier (all features)", "all features, Redis tier", TARGET_REDIS),
        ("304 ≥ 0.6× bare", "all features, 304", TARGET_304),
        ("consume ≥ 0.6× bare, memory tier (no idempotency key)", CONSUME, TARGET_METERED),
        ("metered check ≥ 0.6× bare, memory tier (one metered feature)", METERED_CHECK, TARGET_METERED),
    ):
        if not any(name in p.get("load", {}) for p in phases):
            continue  # a run from before this endpoint was measured
        values = [(p["customers"], p["load"][name]["ratio"]) for p in phases if "load" in p]
        shown = ", ".join(f"{_n(n)}: {v:.2f}×" for n, v in values)
        fixed = [(p["customers"], _to_fixed_url(p["load"], name)) for p in phases if "load" in p]
        if all(v is not None for _, v in fixed):
            shown += " (to the bare view at one fixed URL: " + ", ".join(f"{v:.2f}×" for _, v in fixed) + ")"
        rows.append([target, shown, "yes" if values and min(v for _, v in values) >= floor else "no"])
    return rows


def _to_fixed_url(load: dict[str, Any], name: str) -> float | None:
    """The endpoint's ratio to the bare view asked at one fixed URL (the ceiling up to the fifth
    session): the median over rounds of the two ratios' quotient, both runs of a round being
    seconds apart."""
    fixed = load.get(FIXED_URL, {}).get("ratios")
    if not fixed:
        return None
    return statistics.median(r / f for r, f in zip(load[name]["ratios"], fixed, strict=True) if f)


def _count_targets(phases: list[dict]) -> list[list[str]]:
    costs = [(name, c) for p in phases for name, c in p["check_costs"].items()]
    warm = [c for name, c in costs if "warm" in name or "304" in name]
    cold = [c["queries"] for name, c in costs if "cold (customer changed)" in name]
    catalog = [c["queries"] for name, c in costs if "catalog changed" in name]
    warm_ok = all(c["queries"] == 0 and c["round_trips"] <= 1 for c in warm)
    return [
        [
            "warm check: 0 SQL, ≤ 1 Redis round trip",
            f"max {max(c['queries'] for c in warm)} SQL, {max(c['round_trips'] for c in warm)} round trip",
            "yes" if warm_ok else "no",
        ],
        [
            "cold check ≤ 5 SQL",
            f"customer changed: {max(cold)}; first check in a process after a catalog change: {max(catalog)}",
            "yes" if max(cold) <= 5 else "no",
        ],
    ]


def _metered_targets(phases: list[dict]) -> list[list[str]]:
    """A warm consume asks Redis once (the consumption) and a warm metered check once (the count);
    the race allows exactly the units left, and PostgreSQL holds exactly the limit."""
    rows = []
    costs = [p["metered_costs"] for p in phases if "metered_costs" in p]
    if costs:
        consume = [
            c[name] for c in costs for name in c if name.startswith("consume") and "warm, process" in name
        ]
        check = [c[name] for c in costs for name in c if name.startswith("metered check: warm, process")]
        trips, queries = max(c["round_trips"] for c in consume), max(c["queries"] for c in consume)
        rows.append(
            [
                "warm consume: 1 Redis round trip (memory tier)",
                f"{trips} round trip, {queries} SQL",
                _yes(all(c["round_trips"] == 1 for c in consume)),
            ]
        )
        trips, queries = max(c["round_trips"] for c in check), max(c["queries"] for c in check)
        rows.append(
            [
                "warm metered check: 0 SQL, 1 Redis round trip (memory tier)",
                f"{queries} SQL, {trips} round trip",
                _yes(all(c["queries"] == 0 and c["round_trips"] == 1 for c in check)),
            ]
        )
    race = next((p["race"] for p in reversed(phases) if "race" in p), None)
    if race is not None:
        rows.append(
            [
                f"hard limit under a race: {race['consumers']} consumers on {race['servers']} servers, "
                f"allowed = the {race['last']} units left, rows add up to the limit",
                f"allowed / attempted {race['allowed']} / {race['attempted']}; rows {race['rows_sum']} of "
                f"{race['limit']}",
                _yes(race["exact"]),
            ]
        )
    return rows


def _same_at_scale(first: dict, last: dict) -> list[str]:
    drift = {
        name: last["load"][name]["ratio"] / first["load"][name]["ratio"]
        for name in first["load"]
        if first["load"][name]["ratio"] and name in last["load"]
    }
    same = all(
        first["check_costs"][k]["queries"] == last["check_costs"][k]["queries"] for k in first["check_costs"]
    )
    worst = max(drift.items(), key=lambda kv: abs(1 - kv[1]))
    return [
        f"same at {_n(first['customers'])} and {_n(last['customers'])}",
        f"query counts {'identical' if same else 'differ'}; largest change of a ratio: {worst[0]} "
        f"{(worst[1] - 1) * 100:+.0f}%",
        "yes" if same and abs(1 - worst[1]) <= 0.10 else "counts yes; ratios see text",
    ]


def _extra_targets(last: dict) -> list[list[str]]:
    rows = []
    n = _n(last["customers"])
    if "admin" in last:
        pages = [r for who in last["admin"].values() for name, r in who.items() if "," not in name]
        slowest = max(pages, key=lambda r: r["median_ms"])
        most = max(pages, key=lambda r: r["queries"])
        met = slowest["median_ms"] <= 150 and most["queries"] <= 8
        rows.append(
            [
                f"admin changelists ≤ 150 ms, ≤ 8 queries at {n}",
                f"slowest {slowest['path']} {slowest['median_ms']} ms; most queries {most['path']} "
                f"{most['queries']}",
                "yes" if met else "no",
            ]
        )
    if last.get("dropdowns"):
        d = last["dropdowns"]
        largest = d["worst"]["largest_select"]
        rows.append(
            ["no admin dropdown over 1k options", f"largest {largest}", "no" if d["over_1000"] else "yes"]
        )
    if "sweep" in last:
        sw = last["sweep"]
        met = sw["seconds"] <= 5 and sw["processed"] >= sw["due"]
        rows.append(
            [f"{sw['due']} due scheduled changes in ≤ 5 s", f"{sw['seconds']} s", "yes" if met else "no"]
        )
    if "import" in last:
        im = last["import"]
        met = im["apply"]["seconds"] <= 5 and im["apply"]["applied"]
        rows.append(
            [
                f"{im['rows']}-entitlement import applied in ≤ 5 s",
                f"{im['apply']['seconds']} s (preview {im['preview']['seconds']} s)",
                "yes" if met else "no",
            ]
        )
    if "plan_change" in last:
        pc = last["plan_change"]
        met = (
            pc["never_seen"] == 0
            and pc["stale_seen_after_ms_max"] < 1000
            and pc["write_redis_deletes"] == 0
            and pc["first_check_after_ms_max"] < 1000
        )
        rows.append(
            [
                f"plan change for {pc['customers_on_plan']} customers visible ≤ 1 s, no per-customer deletes",
                f"{pc['stale_answers_after_commit']} stale first answers, all seen within "
                f"{pc['stale_seen_after_ms_max']} ms; first check "
                f"{pc['first_check_after_ms_median']} ms (max {pc['first_check_after_ms_max']}); "
                f"{pc['write_redis_deletes']} deletes",
                "yes" if met else "no",
            ]
        )
    return rows
