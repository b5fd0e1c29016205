"""Helpers shared by the tests (the one place for them; pytest fixtures are in conftest.py and use these).

Real components on free loopback ports, each stopped by its pid: the API (`running_api`), Debian's
Alertmanager (`running_alertmanager`), a webhook receiver; skip marks for the system programs a test
drives (`requires(NGINX)`: components.py names each with its apt package); data written the way the
processor writes it (`write_requests`); the environment of a `logpulse` subprocess (`subprocess_env`).
Imported as `from fixtures import ...` (pyproject's pytest `pythonpath` puts tests/ on the path).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import itertools
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from bytewax.inputs import StatefulSourcePartition

from components import ALERTMANAGER, CHROMEDRIVER, CHROMIUM, GOACCESS, INFLUXD, LOGROTATE, NGINX, requires
from logpulse.config import Settings
from logpulse.flow.sinks.influx import InfluxSink
from logpulse.generator import GeneratorOptions, generate
from logpulse.model import Chunk, RequestBatch, RollupPoint, ScoredBatch
from logpulse.ports import free_port
from logpulse.storage import fleet_table, retention
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.influx import Connection, InfluxWriter, series_rows
from logpulse.storage.marks import ANY_CUSTOMER, parse_row
from logpulse.storage.points import ROLLUP_LEVELS, ROLLUP_RP, rollup_line

__all__ = [
    "ALERTMANAGER",
    "CHROMEDRIVER",
    "CHROMIUM",
    "GENERATED_LINE",
    "GOACCESS",
    "INFLUXD",
    "LOGROTATE",
    "NGINX",
    "ROOT",
    "WebhookReceiver",
    "count_points",
    "drain",
    "expected_figures",
    "free_port",
    "generated_rows",
    "incident_log",
    "ns",
    "p99",
    "requires",
    "requires_influxd",
    "rollup_lines",
    "running_alertmanager",
    "running_api",
    "sample_lines",
    "subprocess_env",
    "write_requests",
]


ROOT = Path(__file__).resolve().parent.parent
"""The repository's top folder (README.md, pyproject.toml, docker-compose.yml)."""


requires_influxd = requires(INFLUXD)


def subprocess_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a `logpulse` subprocess: os.environ plus every Settings field, plus `extra`."""
    env = dict(os.environ)
    env["LOGPULSE_ENV_FILE"] = "/nonexistent"
    for name, value in settings.model_dump().items():
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 10**9


def write_requests(
    settings: Settings, customer: str, rows: list[tuple[dt.datetime, int, float]], worker: int = 0
) -> None:
    """Write (time, status, duration) rows as the processor does: their rollups, then the raw points
    through the real sink (data, then cache-invalidation marks)."""
    b = RequestBatch(
        customer,
        [ns(t) + i for i, (t, _, _) in enumerate(rows)],
        ["/p"] * len(rows),
        [str(s) for _, s, _ in rows],
        [f"{d:.3f}" for _, _, d in rows],
    )
    writer = InfluxWriter(Connection.from_settings(settings))
    retention.ensure_database(writer)  # the rollup retention policy, also in a database made by hand
    writer.write(
        rollup_lines(
            [(customer, t, int(s), d) for t, s, d in zip(b.times, b.statuses, b.durations, strict=True)],
            identity=next(_WRITES),
        ),
        rp=ROLLUP_RP,
    )
    writer.close()
    part = InfluxSink(settings).build("out", worker, 1)
    part.write_batch([(customer, ScoredBatch(b))])
    part.close()


def stored_marks(writer: InfluxWriter) -> dict[str, tuple[int, int]]:
    """Each customer's time range over every `writes` mark stored (packed or not), as readers parse them."""
    res = writer.query('SELECT "min_time", "max_time", "every", "customers" FROM "marks"."writes" GROUP BY *')
    ranges: dict[str, tuple[int, int]] = {}
    for tags, row in series_rows(res[0]):
        for customer, _at, lo, hi in parse_row(tags, row)[0]:
            old = ranges.get(customer, (lo, hi))
            ranges[customer] = (min(lo, old[0]), max(hi, old[1]))
    ranges.pop(ANY_CUSTOMER, None)
    return ranges


def count_points(settings: Settings) -> int:
    """Request points stored in the settings' database."""
    r = httpx.get(
        f"{settings.influxdb_url}/query",
        params={"db": settings.influxdb_database, "q": 'SELECT COUNT("duration") FROM "requests"'},
        timeout=10,
    )
    series = r.json()["results"][0].get("series") or [{"values": [[0, 0]]}]
    return int(series[0]["values"][0][1])


GENERATED_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (cust_\d+) (/\S+) (\d{3}) (\d+\.\d{3})$")
"""A line of `logpulse generate` (the default format, whole seconds, three-decimal durations)."""


def generated_rows(path: Path) -> list[tuple[dt.datetime, str, str, int, float]]:
    """(time, customer, path, status, duration) of every line of a generated log; asserts each matches."""
    rows = []
    for line in path.read_text().splitlines():
        m = GENERATED_LINE.match(line)
        assert m, line
        ts = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.UTC)
        rows.append((ts, m.group(2), m.group(3), int(m.group(4)), float(m.group(5))))
    return rows


def sample_lines(n: int, start: int = 0, tag: str = "a") -> bytes:
    """n valid log lines of customer `cust_<tag>`, numbered from `start` (distinct durations)."""
    return b"".join(
        f"2024-09-29 01:00:{i % 60:02d} cust_{tag} /p 200 0.{i:03d}\n".encode() for i in range(start, start + n)
    )


def drain(partition: StatefulSourcePartition[Chunk, Any], calls: int = 200) -> list[Chunk]:
    """Call a source partition's next_batch until it goes idle (or ends); all chunks it returned."""
    out: list[Chunk] = []
    for _ in range(calls):
        try:
            batch = partition.next_batch()
        except StopIteration:
            break
        out += batch
        if not batch and partition.next_awake() is not None:
            break
    return out


def p99(sorted_values: list[float]) -> float:
    """The README's definition: the value at 1-based rank floor(0.99 n + 0.5), at least 1."""
    return sorted_values[max(1, math.floor(0.99 * len(sorted_values) + 0.5)) - 1]


def expected_figures(rows: Iterable[tuple[int, float]]) -> dict[str, float]:
    """The README's definitions of a period's figures, from its (status, duration) rows (at least one),
    computed independently of logpulse: counts, uptime, mean, median and p99 of the sorted durations."""
    statuses, durations = [s for s, _ in rows], sorted(d for _, d in rows)
    failed = sum(1 for s in statuses if s >= 400)
    return {
        "total_requests": len(statuses),
        "successful_requests": len(statuses) - failed,
        "failed_requests": failed,
        "uptime": (len(statuses) - failed) / len(statuses) * 100,
        "average_latency": statistics.fmean(durations),
        "median_latency": statistics.median(durations),
        "p99_latency": p99(durations),
    }


@contextlib.contextmanager
def _serving(
    proc: subprocess.Popen[Any], ready: Callable[[], bool], what: str, why_exited: Callable[[], str], timeout_s: float
) -> Iterator[None]:
    """Wait until `ready()` answers True (a transport error means: not yet), then hand over; at the
    end stop `proc` by its pid (terminate, then kill)."""
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}: {why_exited()}")
            with contextlib.suppress(httpx.TransportError):
                if ready():
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not start")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        _serving(
            proc,
            lambda: client.get("/healthz").status_code == 200,
            "API",
            lambda: proc.stdout.read() if proc.stdout else "",
            timeout_s,
        ),
    ):
        yield client


@contextlib.contextmanager
def running_alertmanager(tmp: Path, port: int | None = None, timeout_s: float = 30.0) -> Iterator[str]:
    """Debian's prometheus-alertmanager with its own config and storage in `tmp`, on a loopback port,
    clustering off; stopped by its pid. Yields its base URL."""
    binary = ALERTMANAGER.path() or "prometheus-alertmanager"
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

    def ready() -> bool:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

    with _serving(proc, ready, "alertmanager", lambda: f"see {tmp / 'alertmanager.out'}", timeout_s):
        yield url


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


_WRITES = itertools.count(1)


def rollup_lines(
    records: list[tuple[str, int, int, str]],
    parts: int = 1,
    fleet: bool = False,
    identity: int = 0,
    tables: bool = False,
) -> list[str]:
    """Rollup points of every level of raw records (customer, time ns, status, duration text), to be
    written into retention policy ROLLUP_RP.

    Built by the test itself as the processor's rollup step would: per customer and window of each
    level, `parts` points with distinct identity offsets that the API must add up; with `fleet`, also
    the fleet-wide points (customer `*`: every customer's requests together), with `tables` carrying
    the packed per-customer numbers of their identity-window as the processor writes them (without:
    as points written before the tables existed). Points of calls with different `identity` never
    overwrite each other (as the processor's file segments don't).
    """
    lines = []
    for level in ROLLUP_LEVELS:
        groups: dict[tuple[str, int, int], list[tuple[int, str]]] = {}
        for i, (customer, t, status, duration) in enumerate(records):
            for who in (customer, "*") if fleet else (customer,):  # `*` under its customers' identity
                groups.setdefault((who, t - t % level.window_ns, i % parts), []).append((status, duration))
        entries: dict[tuple[int, int], list[tuple[str, int, int, int | None, int]]] = {}
        for (customer, window, part), rows in sorted(groups.items()):
            if customer != "*":
                entries.setdefault((window, part), []).append((customer, *_numbers(rows)))
        for (customer, window, part), rows in sorted(groups.items()):
            count, failed, server, sum_ns = _numbers(rows)
            point = RollupPoint(
                measurement=level.measurement,
                customer_id=customer,
                time_ns=window + part * 1_000_003 + identity * 7_919,
                window_ns=level.window_ns,
                count=count,
                failed=failed,
                server_errors=server,
                sum_ns=sum_ns,
                hist=LatencyHistogram.from_text([d for _, d in rows]).encode(),
                tables=fleet_table.encode_parts(entries[(window, part)]) if customer == "*" and tables else (),
            )
            lines.append(rollup_line(point))
    return lines


def _numbers(rows: list[tuple[int, str]]) -> tuple[int, int, int, int]:
    """count, failed, server errors and the exact sum of durations (ns) of (status, duration text) rows."""
    return (
        len(rows),
        sum(1 for s, _ in rows if s >= 400),
        sum(1 for s, _ in rows if s >= 500),
        int(sum(Decimal(d) for _, d in rows) * 10**9),
    )


class Appender(threading.Thread):
    """Appends generated lines to a file in small bursts (a live service writing its log)."""

    def __init__(self, path: Path, lines: list[str], burst: int = 40, pause_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.path, self.lines, self.burst, self.pause_s = path, lines, burst, pause_s
        self.paused = threading.Event()
        self.written = 0

    def run(self) -> None:
        for i in range(0, len(self.lines), self.burst):
            while self.paused.is_set():
                time.sleep(0.01)
            with open(self.path, "a") as f:
                f.write("".join(self.lines[i : i + self.burst]))
            self.written = min(len(self.lines), i + self.burst)
            time.sleep(self.pause_s)


INCIDENT_LOG_DAY = dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC)


def incident_log(log: Path) -> list[dict[str, str]]:
    """3.6 hours of 4 customers' traffic ending at INCIDENT_LOG_DAY with 3 injected latency / error
    incidents (clear ones: 3x slower, +30 points of errors); returns the generator's ground truth."""
    generate(
        GeneratorOptions(
            out=log,
            rate=12,
            customers=4,
            days=0.15,
            seed=21,
            incidents=3,
            now=INCIDENT_LOG_DAY,
            backfill_max_lines=None,
            live_seconds=0,
            latency_factor=3.0,
            error_rate_increase=0.3,
        )
    )
    truth: list[dict[str, str]] = json.loads(Path(f"{log}.incidents.json").read_text())
    return truth


class Proxy:
    """A TCP forwarder to InfluxDB that the test can cut (every connection closed, new ones refused) or
    hold (requests received but not passed on until `release`; `held` counts the chunks waiting)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.passing = threading.Event()
        self.passing.set()
        self.held = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b, gate in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, gate), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket, gate: bool) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                if gate and not self.passing.is_set():
                    with self.lock:
                        self.held += 1
                    self.passing.wait()
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def hold(self) -> None:
        self.passing.clear()

    def release(self) -> None:
        self.passing.set()

    def close(self) -> None:
        self.passing.set()
        self.cut()
        self.server.close()


@contextlib.contextmanager
def proxy_to(url: str) -> Iterator[Proxy]:
    parts = urlsplit(url)
    p = Proxy((parts.hostname or "127.0.0.1", parts.port or 8086))
    try:
        yield p
    finally:
        p.close()
