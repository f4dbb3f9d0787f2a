"""Instructions per request, counted by valgrind's callgrind: the bare view against each kind
of warm check, in one process, through Django's WSGI handler (no server, no socket).

    .venv/bin/python -m bench.instructions            # after a `make bench` (or a quick one)

Why: on a shared two-core machine a throughput ratio moves by ±15% from one 3-second run to
the next (BENCHMARKS.md), too much to tell whether a change of a few microseconds helped. An
instruction count does not move with the machine's load: the same code, data and requests
give the same count. It is not the whole story (cache misses, the GIL, the server and the
kernel are not in it), so the targets stay measured in req/s; this is the tool for deciding
whether a change to the hot path makes it cheaper.

Each scenario runs in its own process under `valgrind --tool=callgrind`, with counting switched
on only around its measured requests (`callgrind_control`). The request thread's count is
reported apart from the revision listener's, whose work depends on wall time (its flushes come
every 0.1 s, and under valgrind a request takes about 50 times longer).

Needs the benchmark's database as a run of `python -m bench` leaves it (`entitle_bench`,
Redis database 13) and Debian's valgrind.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import stack

# name, path kind, process memory tier on
SCENARIOS = [
    ("bare view", "bare", True),
    ("bare view, one fixed URL", "bare-fixed", True),
    ("one feature, memory tier", "one", True),
    ("all features, memory tier", "all", True),
    ("one feature, Redis tier", "one", False),
    ("all features, Redis tier", "all", False),
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    summary = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=summary)
    parser.add_argument("--requests", type=int, default=400, help="measured requests per scenario")
    parser.add_argument("--customers", type=int, default=200, help="customers the requests cycle through")
    parser.add_argument("--database", default=stack.DEFAULT_DATABASE)
    parser.add_argument("--redis", default=stack.DEFAULT_REDIS)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # "<kind>": run inside valgrind
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    env = stack.environment(database=args.database, redis_url=args.redis)
    os.environ.update(env)
    sys.path.insert(0, str(stack.BASE_DIR))
    os.chdir(stack.BASE_DIR)
    if args.child:
        child(args.child, args.requests, args.customers)
        return
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"No {tool}: install Debian's valgrind.")
    with tempfile.TemporaryDirectory() as directory, ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda s: measure(s, args, Path(directory)), SCENARIOS))
    bare = counts[0][0]
    print(f"Instructions per request ({args.requests} requests over {args.customers} customers), callgrind:")
    print("| scenario | request thread | listener thread | bare ÷ scenario |")
    print("|---|---|---|---|")
    for (name, _, _), (main_thread, listener) in zip(SCENARIOS, counts, strict=True):
        print(f"| {name} | {main_thread:,.0f} | {listener:,.0f} | {bare / main_thread:.3f} |")


def measure(scenario: tuple[str, str, bool], args: argparse.Namespace, into: Path) -> tuple[float, float]:
    """(request thread, listener thread) instructions per measured request."""
    name, kind, memory = scenario
    out = into / f"{kind}-{int(memory)}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.instructions",
        f"--child={kind}",
        f"--requests={args.requests}",
        f"--customers={args.customers}",
        f"--database={args.database}",
        f"--redis={args.redis}",
    ]
    env = {**os.environ, "API_SNAPSHOTS_IN_MEMORY": "1" if memory else "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name}: exited with {done.returncode}\n{done.stderr[-3000:]}")
    totals = []
    for part in sorted(into.glob(f"{out.name}-*")):  # one file per thread, in start order
        found = re.search(r"^totals: (\d+)", part.read_text(errors="replace"), re.MULTILINE)
        totals.append(int(found.group(1)) if found else 0)
    if not totals:
        raise SystemExit(f"{name}: callgrind wrote no counts")
    main_thread = totals[0]
    listener = sum(totals[1:])
    return main_thread / args.requests, listener / args.requests


def child(kind: str, requests: int, customers: int) -> None:
    """Inside valgrind: warm up, then count `requests` requests of one kind."""
    import time

    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    from bench.run import active_features, hot_set
    from checks.listener import known, listener
    from subscriptions.models import Customer

    out = io.StringIO()
    options = {"user": "bench-reader", "scope": "read", "rate_limit": 1_000_000_000, "stdout": out}
    call_command("create_api_key", "instructions", **options)
    key = out.getvalue().strip().splitlines()[-1]
    n = Customer.objects.filter(external_id__startswith="cust-").count()  # not the metered ones
    chosen = hot_set(n, customers, 1)
    features = active_features()
    r = random.Random("instructions")
    paths = {
        "bare": [f"/bench/bare/{c}" for c in chosen],
        "bare-fixed": ["/bench/bare"],
        "one": [f"/api/v1/customers/{c}/entitlements/{r.choice(features)}" for c in chosen for _ in range(2)],
        "all": [f"/api/v1/customers/{c}/entitlements" for c in chosen],
    }[kind]
    app = WSGIHandler()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def run(count: int) -> None:
        for i in range(count):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": paths[i % len(paths)],
                "QUERY_STRING": "",
                "SERVER_NAME": stack.HOST,
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_HOST": stack.HOST,
                "HTTP_AUTHORIZATION": f"Api-Key {key}",
                "HTTP_ACCEPT": "application/json",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(b""),
            }
            response = app(environ, start_response)
            b"".join(response)
            response.close()

    listener.ensure()
    deadline = time.monotonic() + 30
    while not known.healthy() and time.monotonic() < deadline:
        time.sleep(0.05)
    run(max(2 * len(paths), 400))  # built, stored, remembered, spans parsed; every first-use cost paid
    statuses.clear()
    subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True)
    run(requests)
    subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True, capture_output=True)
    wrong = [s for s in statuses if not s.startswith("200")]
    if wrong:
        raise SystemExit(f"{len(wrong)} of {len(statuses)} answers were not 200: {wrong[:3]}")


if __name__ == "__main__":
    main()
