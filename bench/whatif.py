"""A what-if server (`python -m bench --what-if`): the real application with one cost of the
check's hot path taken out, to measure what a proposed change to api/ could reach before anyone
writes it. NOT a correct server — never serve anything else with it.

`BENCH_WHAT_IF=no-round-trip`: a request's reads (revisions, snapshot, key revision) are
answered from what this process read before, and its writes (throttle, count, last-used) are
dropped: the ceiling of a warm check that needs no Redis round trip (fix B in BENCHMARKS.md),
as if revision bumps reached each process by other means (a subscriber thread) and the
counters were flushed in the background.
"""

from __future__ import annotations

import os
import threading

from config.wsgi import application as django_application

MODE = os.environ.get("BENCH_WHAT_IF", "")


def _no_round_trip() -> None:
    from api import store

    lock = threading.Lock()
    remembered: dict[tuple, object] = {}
    written = {"incr": 1, "hincrby": 1, "hset": 1, "sadd": 0}
    original = store.Batch.execute

    def execute(self):
        reads = [(op, repr(args)) for op, args in self._ops if op not in written]
        with lock:
            known = all(read in remembered for read in reads)
            if known:
                return [
                    written[op] if op in written else remembered[(op, repr(args))] for op, args in self._ops
                ]
        results = original(self)
        with lock:
            for (op, args), result in zip(self._ops, results, strict=True):
                if op not in written:
                    remembered[(op, repr(args))] = result
        return results

    store.Batch.execute = execute


if MODE == "no-round-trip":
    _no_round_trip()
elif MODE:
    raise RuntimeError(f"Unknown BENCH_WHAT_IF={MODE!r}.")

application = django_application
