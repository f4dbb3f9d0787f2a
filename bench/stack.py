"""The benchmark's own stack: a PostgreSQL database and a Redis database nobody else uses,
production settings for them, and gunicorn servers bound to 127.0.0.1 only.

Everything is created fresh at the start of a run (the database dropped and created, the Redis
database flushed), so a run never depends on what an earlier one left behind, and never
touches the development or test databases (Redis database 0 is the tests').
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
POSTGRES = "postgres://postgres@127.0.0.1:5432"
DEFAULT_DATABASE = "entitle_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
HOST = "127.0.0.1"


def environment(*, database: str, redis_url: str) -> dict[str, str]:
    """Production settings (config.settings.production) pointed at the benchmark's stores.
    HTTPS redirects and staff MFA are off: the load comes over plain HTTP on loopback, and the
    admin is measured with a forced login."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "bench-only-not-secret-7f3c1e9a2b5d4c8e9f0a1b2c3d4e5f6a7b8c9d0e",
        "ALLOWED_HOSTS": f"{HOST},localhost,testserver",
        "DATABASE_URL": f"{POSTGRES}/{database}",
        "REDIS_URL": redis_url,
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "ENTITLE_REQUIRE_MFA": "false",
        "ENTITLE_BENCH_VIEWS": "1",
        "LOG_LEVEL": "WARNING",
    }


def recreate_database(name: str) -> None:
    """Drop and create the benchmark database (never any other)."""
    import psycopg

    if not name.replace("_", "").isalnum() or "bench" not in name:
        raise SystemExit(f"Refusing to recreate {name!r}: the benchmark only drops a database named *bench*.")
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database (FLUSHDB: this database only)."""
    import redis

    if url.rstrip("/").endswith("/0"):
        raise SystemExit("Refusing to flush Redis database 0 (the tests'): give the benchmark its own.")
    redis.Redis.from_url(url).flushdb()


@dataclass
class Server:
    """One gunicorn (WSGI, production settings) on 127.0.0.1:`port`; `env` adds to the
    benchmark's environment (e.g. no in-process snapshot tier)."""

    name: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    app: str = "config.wsgi:application"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, base_env: dict[str, str], *, workers: int, threads: int, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            self.app,
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            # Each worker listens on its own socket and the kernel spreads connections over them.
            # On one shared socket, whichever worker is awake accepts wrk's burst of connections:
            # now and then one worker took all 16, the other idled, and the run measured one core
            # (BENCHMARKS.md, "How it measures").
            "--reuse-port",
            "--no-control-socket",
            "--log-level",
            "warning",
            "--error-logfile",
            str(log_dir / f"gunicorn-{self.name}.log"),
        ]
        self.process = subprocess.Popen(
            command, cwd=BASE_DIR, env={**os.environ, **base_env, **self.env}, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(
                    f"gunicorn {self.name} exited with {self.process.returncode}: see {log_dir}."
                )
            try:
                with urllib.request.urlopen(f"{self.url}/bench/bare", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit(f"gunicorn {self.name} did not answer on {self.url} within 60 s.")

    def usage(self) -> Usage:
        """What the server's workers have used so far."""
        return usage(children(self.process.pid)) if self.process is not None else Usage()

    def stop(self) -> None:
        """Stop this server (only the process this object started, by its id)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@dataclass(frozen=True)
class Usage:
    """CPU time of a set of processes (all their threads) and the voluntary context switches of
    their main threads (a gunicorn worker's main thread runs its poll loop)."""

    cpu_seconds: float = 0.0
    switches: int = 0

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu_seconds - other.cpu_seconds, self.switches - other.switches)


_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def usage(pids: list[int]) -> Usage:
    """User + system time (/proc/<pid>/stat: the whole process) and the main thread's voluntary
    context switches (/proc/<pid>/status) of `pids`; a process gone counts nothing."""
    cpu = 0.0
    switches = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu += (int(fields[11]) + int(fields[12])) / _TICKS
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    switches += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return Usage(cpu, switches)


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
