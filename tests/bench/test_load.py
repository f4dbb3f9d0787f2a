"""The benchmark's wrk scripts (bench/load.py), run by Debian's wrk against a server that keeps
what it was sent: the requests go out as written (method, path, headers, body), and a body
with a key mark gets a key no other request of any run has."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import load


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers wrk loads
    disable_nagle_algorithm = True  # headers and body are written apart
    seen: list[tuple[str, str, dict[str, str], bytes]]
    lock = threading.Lock()

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # wrk closes its connections when its time is up, some mid-request


@pytest.fixture
def recorder():
    """A server on 127.0.0.1 that answers 200 to everything and keeps each request."""
    handler = type("Handler", (Recorder,), {"seen": []})
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    server.shutdown()
    server.server_close()


def run(url: str, script) -> load.WrkResult:
    return load.run_wrk(url, script, duration=1, connections=2, threads=2)


def test_write_script__gets__sent_as_written(recorder, tmp_path):
    url, seen = recorder
    script = load.write_script(
        tmp_path / "get.lua",
        [("/a/1", {"Authorization": "Api-Key x"}), ("/a/2", {"Authorization": "Api-Key x"})],
    )

    result = run(url, script)

    assert result.requests > 10 and result.errors == 0
    assert {(method, path) for method, path, _, _ in seen} == {("GET", "/a/1"), ("GET", "/a/2")}
    assert {headers["Authorization"] for _, _, headers, _ in seen} == {"Api-Key x"}
    assert {body for _, _, _, body in seen} == {b""}


def test_write_script__posts_with_bodies__sent_with_their_bodies(recorder, tmp_path):
    url, seen = recorder
    headers = {"Authorization": "Api-Key x", "Content-Type": "application/json"}
    requests = [("/consume/1", headers, '{"quantity": 1}'), ("/consume/2", headers, '{"quantity": 2}')]
    script = load.write_script(tmp_path / "post.lua", requests, method="POST")

    result = run(url, script)

    assert result.requests > 10 and result.errors == 0
    assert {(m, p, json.loads(b)["quantity"]) for m, p, _, b in seen} == {
        ("POST", "/consume/1", 1),
        ("POST", "/consume/2", 2),
    }
    assert {h["Content-Type"] for _, _, h, _ in seen} == {"application/json"}


def test_write_script__keyed_bodies__a_new_key_for_every_request_of_every_run(recorder, tmp_path):
    url, seen = recorder
    body = '{"quantity": 1, "idempotency_key": "' + load.KEY_MARK + '"}'
    headers = {"Content-Type": "application/json"}
    script = load.write_script(
        tmp_path / "keyed.lua", [("/consume/1", headers, body), ("/consume/2", headers, body)], method="POST"
    )

    first = run(url, script)
    second = run(url, script)

    keys = [json.loads(b)["idempotency_key"] for _, _, _, b in seen]
    # wrk counts the requests answered; a few more may have been sent when its time was up.
    assert len(keys) >= first.requests + second.requests > 20
    assert len(set(keys)) == len(keys)
    # What the consume endpoint accepts as a key: 1 to 128 printable characters, no spaces.
    assert all(re.fullmatch(r"[\x21-\x7e]{1,128}", key) for key in keys)
    assert {p for _, p, _, _ in seen} == {"/consume/1", "/consume/2"}


def test_write_script__keyed_and_unkeyed_bodies_mixed__refused(tmp_path):
    body = '{"idempotency_key": "' + load.KEY_MARK + '"}'

    with pytest.raises(ValueError, match="one key"):
        load.write_script(tmp_path / "mixed.lua", [("/a", {}, body), ("/b", {}, "{}")], method="POST")
