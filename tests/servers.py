"""Real web processes: gunicorn (the production entry point) serving this test's database and
cache prefix (or what `env` says instead), several at once, each killable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WebProcess:
    """One gunicorn master with one worker of `threads` threads."""

    url: str
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL the master and its worker at once: no request in flight gets to finish."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def start(tmp_path: Path, name: str, threads: int = 8, env: dict[str, str] | None = None) -> WebProcess:
    """A web process on this test's database (committed data: use `transactional_db`) and
    cache prefix, ready to answer; `env` overrides its environment (another database, say)."""
    database = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "ENTITLE_TEST_RUN": settings.ENTITLE_TEST_RUN,
        "PYTEST_XDIST_WORKER": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        **(env or {}),
    }
    log = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: `kill` takes the worker too
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
    return WebProcess(url=f"http://127.0.0.1:{port}", process=process, log=log)


def post(url: str, path: str, body: object, key: str, timeout: float = 60) -> tuple[int, dict | None]:
    """POST JSON with an API key: (status, body); (0, None) when the connection failed."""
    request = urllib.request.Request(
        f"{url}/api/v1/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (OSError, urllib.error.URLError):
        return 0, None
