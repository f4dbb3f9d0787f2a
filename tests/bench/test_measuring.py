"""The benchmark's own measuring: what a server's workers used, read from /proc, and the rule
that measures a run again when it shows the slow mode's signature (bench/run.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from bench import run, stack

# A process that starts two children, says their ids, and waits for its input to close.
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    code = "import sys; sys.stdin.read()"
    kids = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE) for _ in range(2)]
    print(" ".join(str(k.pid) for k in kids), flush=True)
    sys.stdin.read()
    for k in kids:
        k.stdin.close()
        k.wait()
    """
)

# Half a second of CPU, then 30 short sleeps (each a voluntary context switch), then say the
# CPU time it used by its own count, and wait.
WORKER = textwrap.dedent(
    """
    import sys, time
    while time.process_time() < 0.5:
        pass
    for _ in range(30):
        time.sleep(0.002)
    print(time.process_time(), flush=True)
    sys.stdin.read()
    """
)
# /proc counts user and system time in clock ticks (10 ms), each rounded down.
TICK = 1 / os.sysconf("SC_CLK_TCK")


def test_children__a_process_with_two_children__both_and_only_them():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        kids = sorted(int(pid) for pid in parent.stdout.readline().split())
        assert stack.children(parent.pid) == kids
    finally:
        parent.stdin.close()
        parent.wait(timeout=10)
    assert stack.children(parent.pid) == []


def test_usage__a_busy_then_sleeping_process__its_cpu_time_and_switches():
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        own_count = float(worker.stdout.readline())
        used = stack.usage([worker.pid])
    finally:
        worker.stdin.close()
        worker.wait(timeout=10)
    # What /proc says is what the process counted itself (the print after it costs little).
    assert used.cpu_seconds == pytest.approx(own_count, abs=3 * TICK)
    assert used.switches >= 30
    assert stack.usage([worker.pid]) == stack.Usage()  # gone: counts nothing


def test_usage__difference__what_was_used_between_two_readings():
    assert stack.Usage(2.5, 40) - stack.Usage(1.0, 15) == stack.Usage(1.5, 25)


def _runs(*switches: float):
    """A stand-in for `measured_run`: runs with these switches a request, numbered."""
    made = iter(switches)
    count = 0

    def measure():
        nonlocal count
        count += 1
        return {"run": count, "switches": next(made)}

    return measure


def test_until_steady__a_steady_run__measured_once():
    told = []
    record = run.until_steady(_runs(0.9, 0.9), told.append)
    assert record == {"run": 1, "switches": 0.9, "slow_mode_runs": []}
    assert told == []


def test_until_steady__slow_runs__measured_again_and_kept():
    told = []
    record = run.until_steady(_runs(3.7, 3.6, 1.0), told.append)
    assert record["run"] == 3
    assert [r["run"] for r in record["slow_mode_runs"]] == [1, 2]
    assert [r["run"] for r in told] == [1, 2]


def test_until_steady__slow_every_time__the_third_run_kept():
    record = run.until_steady(_runs(3.7, 3.6, 3.9, 1.0), lambda _: None)
    assert record["run"] == 3
    assert record["switches"] == 3.9
    assert len(record["slow_mode_runs"]) == run.SLOW_MODE_RETRIES
