"""What the benchmark counts inside one process, with Django set up on production settings:
SQL queries (Django's CaptureQueriesContext), Redis round trips (each packed send on a
connection: a pipeline is one) and Redis commands by name (every command sent, pipelined or
not), for checks, consumes, admin pages, a plan change and the scheduled-change sweep; and,
against the running servers, the hard-limit race.

Requests go through `django.test.Client`: the same WSGI handler, middleware, views and stores
as gunicorn, minus the socket. Redis's own INFO commandstats is not used: the Redis server is
shared with other work on this machine, so its counters move for reasons of their own.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.seed import METERED_ADDON

# --- counting Redis -------------------------------------------------------------------------------


@dataclass
class RedisCount:
    """What one thread sends (the revision listener's pings and flushes are its own)."""

    round_trips: int = 0
    commands: Counter = field(default_factory=Counter)
    thread: int = field(default_factory=threading.get_ident)


_counting: list[RedisCount] = []
_patched = False


def _patch_redis() -> None:
    """Wrap redis-py once: round trips at the connection, commands at the client and pipeline."""
    global _patched
    if _patched:
        return
    send = redis.connection.AbstractConnection.send_packed_command
    execute = redis.Redis.execute_command
    pipeline = redis.client.Pipeline._execute_pipeline

    def mine() -> list[RedisCount]:
        thread = threading.get_ident()
        return [count for count in _counting if count.thread == thread]

    def counting_send(self, command, check_health=True):
        for count in mine():
            count.round_trips += 1
        return send(self, command, check_health)

    def counting_execute(self, *args, **options):
        for count in mine():
            count.commands[str(args[0]).upper()] += 1
        return execute(self, *args, **options)

    def counting_pipeline(self, conn, commands, raise_on_error):
        for count in mine():
            for args, _ in commands:
                count.commands[str(args[0]).upper()] += 1
        return pipeline(self, conn, commands, raise_on_error)

    import checks.snapshots

    hot_mget = checks.snapshots.hot_mget

    def counting_hot_mget(keys):  # one MGET on a thread's own connection (checks.store.hot_mget)
        for count in mine():
            count.commands["MGET"] += 1
        return hot_mget(keys)

    redis.connection.AbstractConnection.send_packed_command = counting_send
    redis.Redis.execute_command = counting_execute
    redis.client.Pipeline._execute_pipeline = counting_pipeline
    checks.snapshots.hot_mget = counting_hot_mget
    _patched = True


@dataclass
class Cost:
    queries: int
    round_trips: int
    commands: int
    ms: float
    by_command: dict[str, int]


@contextmanager
def counted():
    """Count SQL queries, Redis round trips and commands, and time, inside the block."""
    _patch_redis()
    count = RedisCount()
    _counting.append(count)
    result: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        with CaptureQueriesContext(connection) as queries:
            yield result
    finally:
        elapsed = (time.perf_counter() - started) * 1000
        _counting.remove(count)
    result["cost"] = Cost(
        queries=len(queries.captured_queries),
        round_trips=count.round_trips,
        commands=sum(count.commands.values()),
        ms=round(elapsed, 2),
        by_command=dict(count.commands),
    )


# --- checks ---------------------------------------------------------------------------------------


def _bump(key: str) -> None:
    """Move a revision as a write's on-commit bump does (increment and publish)."""
    from toolkit.revisions import bump

    bump(key)


def _listening() -> None:
    """Start this process's revision listener and wait until it is subscribed (checks.listener)."""
    from checks.listener import known, listener

    listener.ensure()
    deadline = time.monotonic() + 10
    while not known.healthy():
        if time.monotonic() > deadline:
            raise SystemExit("The revision listener did not subscribe within 10 s.")
        time.sleep(0.01)


def check_costs(read_key: str, customers: list[str], feature: str) -> dict[str, dict[str, Any]]:
    """Queries, round trips, commands and time of each kind of check, over several customers:
    the counts are the most seen (they should not vary), the time the median."""
    from django.test import override_settings

    from api import keys
    from checks import snapshots
    from checks.listener import known
    from toolkit.revisions import CATALOG_KEY, customer_key

    _listening()
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {read_key}")
    results: dict[str, list[Cost]] = {}

    def measure(name: str, path: str, **headers: str) -> Any:
        with counted() as box:
            response = client.get(path, headers=headers)
        expected = 304 if "If-None-Match" in headers else 200
        if response.status_code != expected:
            raise SystemExit(f"{name}: {path} answered {response.status_code}, not {expected}.")
        results.setdefault(name, []).append(box["cost"])
        return response

    snapshots.forget_all()
    keys.forget_all()
    for index, external_id in enumerate(customers):
        for kind, path in (
            ("all", f"/api/v1/customers/{external_id}/entitlements"),
            ("one", f"/api/v1/customers/{external_id}/entitlements/{feature}"),
        ):
            if index == 0 and kind == "all":
                # A process's very first check: the key, the catalog and the customer are read.
                _bump(customer_key(external_id))
                measure(f"{kind}: first in a new process", path)
            _bump(customer_key(external_id))
            measure(f"{kind}: cold (customer changed)", path)
            response = measure(f"{kind}: warm, process memory", path)
            measure(f"{kind}: 304 (If-None-Match)", path, **{"If-None-Match": response["ETag"]})
            healthy, known.healthy = known.healthy, lambda: False
            try:  # as while the listener is reconnecting: the round trip of api.authentication
                measure(f"{kind}: warm, process memory, listener down", path)
                measure(f"{kind}: 304, listener down", path, **{"If-None-Match": response["ETag"]})
            finally:
                del known.healthy
            assert known.healthy == healthy
            snapshots.forget_all()
            measure(f"{kind}: warm, from Redis", path)
            with override_settings(API_SNAPSHOTS_IN_MEMORY=False):
                measure(f"{kind}: warm, Redis tier (no process memory)", path)
            if index % 4 == 0:
                _bump(CATALOG_KEY)  # any catalog change: the first check per process reloads the catalog
                measure(f"{kind}: cold (catalog changed), first in process", path)
                _bump(customer_key(external_id))
                snapshots.forget_all()  # another process: the new catalog specs come from Redis
                measure(f"{kind}: cold (catalog changed), catalog from Redis", path)
    return _summary(results)


# --- metered features -----------------------------------------------------------------------------


def metered_costs(read_key: str, customers: list[str], feature: str) -> dict[str, dict[str, Any]]:
    """Queries, round trips, commands and time of a consume (without and with an idempotency
    key) and of a check of a metered feature, over several customers who hold `feature`, as
    `check_costs` counts a check's."""
    from django.test import override_settings
    from django.utils import timezone

    from api import keys
    from checks import snapshots
    from checks.store import hot_mget
    from toolkit.redis import redis_client
    from toolkit.revisions import customer_key

    _listening()
    hot_mget(["connect"])  # this thread's own connection to Redis, made (its handshake) unmeasured
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {read_key}")
    results: dict[str, list[Cost]] = {}
    unique = time.time_ns()

    def measure(name: str, path: str, body: dict | None = None) -> dict:
        with counted() as box:
            if body is None:
                response = client.get(path)
            else:
                response = client.post(path, body, content_type="application/json")
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code}: {response.content[:300]!r}")
        answer = response.json()
        if body is not None and not answer["allowed"]:
            raise SystemExit(f"{name}: {path} refused {body}: {answer}")
        results.setdefault(name, []).append(box["cost"])
        return answer

    snapshots.forget_all()
    keys.forget_all()
    for index, external_id in enumerate(customers):
        check = f"/api/v1/customers/{external_id}/entitlements/{feature}"
        consume = f"{check}/consume"
        everything = f"/api/v1/customers/{external_id}/entitlements"
        # Unmeasured: every count of the period set in Redis (rebuilt from the rows), as the load's
        # warming leaves them.
        client.get(everything)
        _bump(customer_key(external_id))
        measure("metered check: cold (customer changed)", check)
        measure("metered check: warm, process memory", check)
        measure("all features of a metered customer: warm, process memory", everything)
        with override_settings(API_SNAPSHOTS_IN_MEMORY=False):
            measure("metered check: warm, Redis tier (no process memory)", check)
        one = {"quantity": 1}
        measure("consume: warm, process memory", consume, one)
        keyed = {"quantity": 1, "idempotency_key": f"costs-{unique}-{index}"}
        measure("consume with an idempotency key: warm, process memory", consume, keyed)
        with override_settings(API_SNAPSHOTS_IN_MEMORY=False):
            measure("consume: warm, Redis tier (no process memory)", consume, one)
        # Redis lost the period's count (emptied, restarted): rebuilt from the rows first.
        snapshot = snapshots.remembered(external_id) or snapshots.read_current(external_id, timezone.now())
        redis_client().delete(snapshot.meter_of(feature).counter)
        measure("consume: count lost in Redis (rebuilt from the rows)", consume, one)
    return _summary(results)


def _summary(results: dict[str, list[Cost]]) -> dict[str, dict[str, Any]]:
    """Per kind of request: the most queries, round trips and commands seen (they should not
    vary) and the median time."""
    summary = {}
    for name, costs in results.items():
        summary[name] = {
            "samples": len(costs),
            "queries": max(c.queries for c in costs),
            "round_trips": max(c.round_trips for c in costs),
            "commands": max(c.commands for c in costs),
            "ms_median": round(statistics.median(c.ms for c in costs), 2),
            "by_command": max((c.by_command for c in costs), key=lambda d: sum(d.values())),
        }
    return summary


RACE_CONSUMERS = 32
RACE_LAST = 100


def _http(method: str, url: str, key: str, body: dict | None = None) -> tuple[int, dict | None]:
    """(status, JSON answer) of one request; (0, None) when no answer came."""
    headers = {"Authorization": f"Api-Key {key}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return 0, None


def hard_limit_race(
    *,
    urls: list[str],
    key: str,
    customer: str,
    feature: str,
    consumers: int = RACE_CONSUMERS,
    last: int = RACE_LAST,
) -> dict[str, Any]:
    """The hard limit under contention: `customer` is brought to the last `last` units of
    `feature` in one consume, then `consumers` threads, spread over the servers at `urls`, each
    consume one unit at a time until refused. Exactly `last` may be allowed, each count from
    limit − last + 1 to the limit given once, and the rows in PostgreSQL must add up to the
    limit."""
    from django.db.models import Sum

    from usage.models import Consumption

    base = f"/api/v1/customers/{customer}/entitlements/{feature}"
    status, answer = _http("GET", f"{urls[0]}{base}", key)
    if status != 200 or answer is None or answer.get("limit_type") != "hard" or answer.get("limit") is None:
        raise SystemExit(f"{base} answered {status} {answer}: not a hard limit.")
    limit, used = answer["limit"], answer["used"]
    head = limit - last - used
    if head < 0:
        raise SystemExit(f"{customer} has used {used} of {limit} {feature}: fewer than {last} are left.")
    if head:
        status, answer = _http("POST", f"{urls[0]}{base}/consume", key, {"quantity": head})
        if status != 200 or answer is None or answer["remaining"] != last:
            raise SystemExit(f"Consuming {head} to leave {last} answered {status} {answer}.")

    barrier = threading.Barrier(consumers + 1)
    answers: list[tuple[int, dict | None]] = []
    lock = threading.Lock()

    def consumer(number: int) -> None:
        url = f"{urls[number % len(urls)]}{base}/consume"
        barrier.wait(timeout=60)
        for _ in range(last + 1):  # one consumer alone could take every unit, then be refused
            status, answer = _http("POST", url, key, {"quantity": 1})
            with lock:
                answers.append((status, answer))
            if status != 200 or answer is None or not answer["allowed"]:
                return

    with ThreadPoolExecutor(consumers) as pool:
        futures = [pool.submit(consumer, number) for number in range(consumers)]
        barrier.wait(timeout=60)
        started = time.perf_counter()
        for future in futures:
            future.result(timeout=600)
        seconds = time.perf_counter() - started
    allowed = sorted(a["used"] for s, a in answers if s == 200 and a is not None and a["allowed"])
    refused = sum(1 for s, a in answers if s == 200 and a is not None and not a["allowed"])
    after = []
    for url in urls:  # every server, asked once more: refused, at the limit
        status, answer = _http("POST", f"{url}{base}/consume", key, {"quantity": 1})
        after.append(
            {"status": status, "allowed": answer and answer["allowed"], "used": answer and answer["used"]}
        )
    rows = Consumption.objects.filter(customer__external_id=customer, feature__key=feature)
    period = rows.order_by("-id").values_list("period_start", flat=True).first()
    in_period = rows.filter(period_start=period)
    total = in_period.aggregate(total=Sum("quantity"))["total"] or 0
    return {
        "customer": customer,
        "feature": feature,
        "limit": limit,
        "last": last,
        "consumers": consumers,
        "servers": len(urls),
        "attempted": len(answers),
        "allowed": len(allowed),
        "refused": refused,
        "errors": len(answers) - len(allowed) - refused,
        "each_count_once": allowed == list(range(limit - last + 1, limit + 1)),
        "seconds": round(seconds, 2),
        "after": after,
        "rows": in_period.count(),
        "rows_sum": total,
        "exact": len(allowed) == last
        and total == limit
        and allowed == list(range(limit - last + 1, limit + 1)),
    }


# --- admin ----------------------------------------------------------------------------------------

CHANGELISTS = {
    "customers": "/admin/subscriptions/customer/",
    "subscriptions": "/admin/subscriptions/subscription/",
    "overrides": "/admin/subscriptions/override/",
    "audit log": "/admin/audit/auditentry/",
    "customers, search": "/admin/subscriptions/customer/?q=cust-0999",
    "audit log, filtered by source": "/admin/audit/auditentry/?source__exact=shell",
}


def admin_changelists(user, *, repeats: int = 5) -> dict[str, dict[str, Any]]:
    """Each changelist: status, queries, first and median time of `repeats` loads."""
    client = Client()
    client.force_login(user)
    results = {}
    for name, path in CHANGELISTS.items():
        costs = []
        status = 0
        for _ in range(repeats + 1):
            with counted() as box:
                response = client.get(path)
            status = response.status_code
            costs.append(box["cost"])
        results[name] = {
            "path": path,
            "status": status,
            "queries": costs[-1].queries,
            "first_ms": costs[0].ms,
            "median_ms": round(statistics.median(c.ms for c in costs[1:]), 1),
            "max_ms": max(c.ms for c in costs[1:]),
        }
    return results


_SELECT = re.compile(r"<select\b([^>]*)>(.*?)</select>", re.S | re.I)
_NAME = re.compile(r'name="([^"]+)"')


def admin_dropdowns(user) -> dict[str, Any]:
    """Every registered model's add page, one change page and its changelist: the largest
    <select> on each (options counted in the HTML sent)."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    client = Client(raise_request_exception=False)  # a page that fails is reported, not fatal
    client.force_login(user)
    pages: list[dict[str, Any]] = []
    quiet = logging.getLogger("django.request")
    level, quiet.level = quiet.level, logging.CRITICAL  # 403s are expected; failures are counted
    for model, _ in sorted(admin.site._registry.items(), key=lambda kv: kv[0]._meta.label):
        meta = model._meta
        urls = []
        for view in ("add", "changelist"):
            with suppress(NoReverseMatch):
                urls.append((view, reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}")))
        first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        if first is not None:
            urls.append(("change", reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first])))
        for view, url in urls:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            largest, largest_name = 0, ""
            if response.status_code == 200:
                for attrs, body in _SELECT.findall(response.content.decode("utf-8", "replace")):
                    options = body.lower().count("<option")
                    if options > largest:
                        name = _NAME.search(attrs)
                        largest, largest_name = options, name.group(1) if name else "?"
            pages.append(
                {
                    "model": meta.label,
                    "view": view,
                    "status": response.status_code,
                    "ms": round(elapsed, 1),
                    "largest_select": largest,
                    "select": largest_name,
                }
            )
    quiet.level = level
    worst = max(pages, key=lambda p: p["largest_select"])
    return {
        "pages": len(pages),
        "worst": worst,
        "over_1000": [p for p in pages if p["largest_select"] > 1000],
        # 403: a page the model does not offer (the audit log has no add page); not a failure.
        "failed": [p for p in pages if p["status"] not in (200, 403)],
        "slowest": sorted(pages, key=lambda p: -p["ms"])[:5],
    }


# --- a plan change reaching the checks ------------------------------------------------------------


def _http_json(url: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Api-Key {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def plan_change(
    *, server_url: str, read_key: str, write_key: str, plan: str, sample: list[str]
) -> dict[str, Any]:
    """Change one entitlement of `plan` through the API (in process, counted), then ask the
    server (another process, memory tier warm) for it on `sample` customers whose answer comes
    from that plan: how long until each shows it, and which Redis commands the write sent."""
    from catalog.models import Entitlement, Feature
    from subscriptions.models import Subscription

    live = ("active", "trialing", "past_due")
    affected = (
        Subscription.objects.filter(plan__key=plan, status__in=live).values("customer_id").distinct().count()
    )
    grants = {e.feature.key: e for e in Entitlement.objects.filter(item__key=plan).select_related("feature")}
    feature = next(
        f
        for f in Feature.objects.filter(kind="quantity", status="active").order_by("key")
        if f.key in grants and len(f.levels) > 1 and grants[f.key].value != "unlimited"
    )
    old = grants[feature.key].value
    new = next(level for level in feature.levels if level != old)
    base = f"{server_url}/api/v1/customers"
    # The customers whose answer is the plan's own value; warm them in the server.
    chosen = []
    for external_id in sample:
        for _ in range(3):  # enough to reach both workers' memory (usually)
            _, answer = _http_json(f"{base}/{external_id}/entitlements/{feature.key}", read_key)
        if answer["source"] == f"plan:{plan}" and answer["value"] == old:
            chosen.append(external_id)
    if not chosen:
        raise SystemExit(f"No sampled customer gets {feature.key} from {plan}.")

    client = Client(HTTP_AUTHORIZATION=f"Api-Key {write_key}", HTTP_X_CHANGE_REASON="Benchmark: plan change")
    written_at = time.perf_counter()
    with counted() as box:
        response = client.put(
            f"/api/v1/items/{plan}/entitlements/{feature.key}",
            {"value": new},
            content_type="application/json",
        )
    committed_at = time.perf_counter()
    if response.status_code != 200:
        raise SystemExit(f"The plan change answered {response.status_code}: {response.content[:300]!r}")
    first_ms = []
    visible_ms = []
    stale_ms = []  # when each customer that answered the old value first showed the new one
    for external_id in chosen:
        asked = time.perf_counter()
        _, answer = _http_json(f"{base}/{external_id}/entitlements/{feature.key}", read_key)
        first_ms.append((time.perf_counter() - asked) * 1000)
        stale = answer["value"] != new
        # Ask again until it shows (the server's listener may not have had the bump yet).
        while answer["value"] != new and time.perf_counter() - committed_at < 5:
            time.sleep(0.005)
            _, answer = _http_json(f"{base}/{external_id}/entitlements/{feature.key}", read_key)
        if answer["value"] == new:
            visible_ms.append((time.perf_counter() - committed_at) * 1000)
            if stale:
                stale_ms.append(visible_ms[-1])
    all_seen_ms = (time.perf_counter() - committed_at) * 1000
    cost: Cost = box["cost"]
    deletes = sum(n for name, n in cost.by_command.items() if name in ("DEL", "UNLINK", "DELETE"))
    return {
        "plan": plan,
        "feature": feature.key,
        "old": old,
        "new": new,
        "customers_on_plan": affected,
        "sampled": len(chosen),
        "write_ms": round((committed_at - written_at) * 1000, 1),
        "write_queries": cost.queries,
        "write_redis_commands": cost.by_command,
        "write_redis_deletes": deletes,
        "stale_answers_after_commit": len(stale_ms) + len(chosen) - len(visible_ms),
        "stale_seen_ms": [round(ms, 1) for ms in stale_ms],
        "never_seen": len(chosen) - len(visible_ms),
        "stale_seen_after_ms_max": round(max(stale_ms), 1) if stale_ms else 0.0,
        "first_check_after_ms_median": round(statistics.median(first_ms), 1),
        "first_check_after_ms_max": round(max(first_ms), 1),
        "all_sampled_seen_ms": round(all_seen_ms, 1),
    }


# --- the scheduled-change sweep -------------------------------------------------------------------

_SWEEPER = """
import json, sys, time
import django
django.setup()
from datetime import datetime
from audit.scheduling import sweep_due_changes
now = datetime.fromisoformat(sys.argv[1])
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
started = time.time()
processed = sweep_due_changes(now=now)
print(json.dumps({"processed": processed, "started": started, "ended": time.time()}), flush=True)
"""


def import_entitlements(user) -> dict[str, Any]:
    """A file of item entitlements, every item × every feature (10,000 rows at the seeded
    catalog, some new, some changed, some unchanged), previewed and then applied as `user`
    would from the admin, each timed; inside a transaction rolled back after, so the rest of
    the benchmark sees the catalog as seeded."""
    from django.db import transaction

    from audit.imports.files import import_file
    from catalog.models import Entitlement, Feature, Item

    def value(feature: Feature) -> str:
        if feature.kind == Feature.Kind.SWITCH:
            return "true"
        if feature.kind == Feature.Kind.RANGE:
            return str(feature.min_value if feature.min_value is not None else 0)
        return str(feature.levels[0])

    # The catalog the `cust-` customers draw from: not the metered corner (bench.seed), so the file
    # has the same 10,000 rows as before metered features were seeded.
    items = list(Item.objects.exclude(key=METERED_ADDON).order_by("key").values_list("key", flat=True))
    features = list(Feature.objects.exclude(kind="metered").order_by("key"))
    rows = ["item,feature,value"] + [f"{item},{f.key},{value(f)}" for item in items for f in features]
    data = "\n".join(rows).encode()
    existing = Entitlement.objects.count()
    outcome: dict[str, Any] = {"rows": len(rows) - 1, "entitlements before": existing}
    with transaction.atomic():
        for apply in (False, True):
            started = time.perf_counter()
            result = import_file(
                "entitlements",
                data,
                file_name="bench.csv",
                actor=user,
                reason="Benchmark: an import",
                apply=apply,
            )
            outcome["apply" if apply else "preview"] = {
                "seconds": round(time.perf_counter() - started, 2),
                "counts": result.counts,
                "applied": result.applied,
            }
        outcome["history rows"] = Entitlement.history.filter(
            history_change_reason="Benchmark: an import"
        ).count()
        transaction.set_rollback(True)
    return outcome


def sweep(*, workers: int, now: datetime, env: dict[str, str]) -> dict[str, Any]:
    """Apply every due scheduled change with `workers` processes racing (as Celery workers
    would, SELECT ... FOR UPDATE SKIP LOCKED): wall time from the first start to the last end."""
    from audit.models import ScheduledChange

    due = ScheduledChange.objects.filter(status="pending", effective_at__lte=now).count()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _SWEEPER, now.isoformat()],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise SystemExit("A sweeper did not start.")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [
            json.loads(process.communicate(timeout=1800)[0].strip().splitlines()[-1]) for process in processes
        ]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    wall = max(o["ended"] for o in outputs) - min(o["started"] for o in outputs)
    states = Counter(ScheduledChange.objects.filter(effective_at__lte=now).values_list("status", flat=True))
    errors = Counter(
        e.split(":", 1)[0]
        for e in ScheduledChange.objects.filter(status="failed").values_list("error", flat=True)
    )
    processed = sum(o["processed"] for o in outputs)
    return {
        "due": due,
        "workers": workers,
        "processed": processed,
        "seconds": round(wall, 2),
        "per_second": round(processed / wall, 1) if wall else None,
        "states": dict(states),
        "failures_by_status": dict(errors),
    }


def sweep_profile(*, sample: int = 100) -> dict[str, Any]:
    """What applying `sample` due changes costs in this process, inside a transaction that is
    then rolled back (so the real sweep still finds them all): queries by statement, and time.
    Redis round trips are those of the apply only: the revision bumps wait for a commit."""
    from django.db import transaction

    from audit.models import ScheduledChange
    from audit.scheduling import sweep_due_changes

    pending = ScheduledChange.objects.filter(status="pending").order_by("effective_at", "id")
    now = pending.values_list("effective_at", flat=True)[sample - 1]  # the first `sample` are due
    with transaction.atomic():
        with counted() as box, CaptureQueriesContext(connection) as queries:
            processed = sweep_due_changes(now=now, batch=sample + 1)
        transaction.set_rollback(True)
    cost: Cost = box["cost"]
    statements = Counter(_statement(q["sql"]) for q in queries.captured_queries)
    return {
        "by_statement_per_change": {
            k: round(v / max(processed, 1), 2) for k, v in statements.most_common(12)
        },
        "processed": processed,
        "queries_per_change": round(cost.queries / max(processed, 1), 1),
        "redis_round_trips_per_change": round(cost.round_trips / max(processed, 1), 1),
        "ms_per_change": round(cost.ms / max(processed, 1), 1),
    }


def _statement(sql: str) -> str:
    """A query's verb and table, e.g. SELECT subscriptions_customer, or SAVEPOINT."""
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_]+)"?', sql)
    return f"{verb} {table.group(1)}" if table and verb in ("SELECT", "INSERT", "UPDATE", "DELETE") else verb


def as_dict(value: Any) -> Any:
    return asdict(value) if hasattr(value, "__dataclass_fields__") else value
