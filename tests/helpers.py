"""Test helpers shared by integration tests: the real API, a real Alertmanager, a webhook receiver."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_api(env: dict[str, str], timeout_s: float = 60.0) -> Iterator[httpx.Client]:
    """`logpulse serve` on a free port; yields an httpx client with that base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpulse", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("API did not start")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def running_alertmanager(tmp: Path, port: int | None = None, timeout_s: float = 30.0) -> Iterator[str]:
    """Debian's prometheus-alertmanager with its own config and storage in `tmp`, on a loopback port,
    clustering off; stopped by its pid. Yields its base URL."""
    binary = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: none\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: none\n"
    )
    with open(tmp / "alertmanager.out", "ab") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {proc.returncode}: see {tmp / 'alertmanager.out'}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("alertmanager did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class WebhookReceiver:
    """A real HTTP server on a loopback port that records every POST (body and headers); it can be
    stopped and started again on the same port to play a receiver that is down for a while."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[tuple[dict[str, str], dict[str, object]]] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
