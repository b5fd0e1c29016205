"""Real nginx in front of a small upstream -> access log -> `logpulse process` -> InfluxDB -> API.

nginx (Debian's nginx-light) runs with its own config and prefix in a temp dir on a free loopback
port, started and stopped by its pid, with a custom `log_format` carrying the customer in a request
header. Requests go with and without the header; half-way the log is rotated the way nginx users
do it (rename, then `kill -USR1` the master). The expected figures per customer and day are computed
here from nginx's own access log files with a regex of this test, not with logpulse code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from fixtures import NGINX, count_points, expected_figures, free_port, requires, running_api, subprocess_env

NGINX_TZ = "Asia/Kathmandu"  # UTC+05:45, no DST
LOG_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" cust="$http_x_customer_id" rt=$request_time urt="$upstream_response_time"'
)
LINE = re.compile(
    r'^\S+ - \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) \d+ "[^"]*" "[^"]*" '
    r'cust="(?P<customer>[^"]*)" rt=(?P<rt>[\d.]+) urt="[^"]*"$'
)

pytestmark = requires(NGINX)


class Upstream(BaseHTTPRequestHandler):
    """`GET /s/<status>/d/<ms>/...`: answers <status> after <ms> milliseconds."""

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].split("/")
        status, delay_ms = int(parts[2]), int(parts[4])
        time.sleep(delay_ms / 1000)
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture()
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class RealNginx:
    """nginx with its own prefix, config and free port; run in the foreground so its pid is the master's."""

    def __init__(self, prefix: Path, upstream_port: int) -> None:
        self.prefix = prefix
        self.port = free_port()
        (prefix / "logs").mkdir(parents=True)
        (prefix / "temp").mkdir()
        self.access_log = prefix / "logs" / "access.log"
        user = "user root;" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"""
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    log_format logpulse '{LOG_FORMAT}';
    access_log {self.access_log} logpulse;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{ proxy_pass http://127.0.0.1:{upstream_port}; }}
    }}
}}
"""
        )
        self.proc = subprocess.Popen(
            [str(NGINX.path()), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "TZ": NGINX_TZ},  # $time_local in +05:45: logpulse must convert to UTC
        )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read() if self.proc.stderr else b''!r}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/s/200/d/0", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def rotate(self) -> Path:
        """The nginx way: rename the log, then USR1 to the master, which reopens (creates) it."""
        rotated = self.access_log.with_name("access.log.1")
        os.rename(self.access_log, rotated)
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not self.access_log.exists():
            assert time.monotonic() < deadline, "nginx did not reopen its log"
            time.sleep(0.02)
        return rotated

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finishes and flushes
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# (customer header or None, status, delay ms): repeated with different paths and query strings
TRAFFIC = [
    ("acme", 200, 0),
    ("acme", 200, 30),
    ("acme", 404, 5),
    ("acme", 500, 60),
    ("globex", 200, 10),
    ("globex", 503, 0),
    ("globex", 201, 45),
    (None, 200, 0),  # no header: no customer, dead-lettered, never counted for anyone
    ("-", 200, 0),
]


def send(port: int, rounds: int, start: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for i in range(start, start + rounds):
            for customer, status, delay in TRAFFIC:
                headers = {"X-Customer-Id": customer} if customer is not None else {}
                r = client.get(f"/s/{status}/d/{delay}/item/{i}?token=secret{i}", headers=headers)
                assert r.status_code == status


def expected_from_nginx_logs(files: list[Path]) -> tuple[dict[str, dict[str, dict[str, float]]], int, int]:
    """{customer: {day: figures}} from nginx's access logs, lines with a customer, lines without."""
    rows: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    with_customer = without = 0
    for f in files:
        for line in f.read_text().splitlines():
            m = LINE.match(line)
            assert m, line
            if m["customer"] in ("", "-"):
                without += 1
                continue
            with_customer += 1
            when = dt.datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z").astimezone(dt.UTC)
            rows[m["customer"]][when.date().isoformat()].append((int(m["status"]), float(m["rt"])))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for customer, days in rows.items():
        out[customer] = {}
        for day, values in days.items():
            out[customer][day] = expected_figures(values)
    return out, with_customer, without


def test_real_nginx_access_log_with_rotation(influx_settings, upstream: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nginx = RealNginx(tmp_path / "nginx", upstream)
    env = subprocess_env(
        influx_settings,
        LOG_PATH=str(nginx.access_log),
        LOG_FORMAT="nginx",
        NGINX_LOG_FORMAT=f"log_format logpulse '{LOG_FORMAT}';",
        CUSTOMER_FROM="$http_x_customer_id",
        POLL_INTERVAL_S="0.05",
        SNAPSHOT_INTERVAL_S="1",
        SCORING_ENABLED="false",
    )
    out = (tmp_path / "processor.out").open("wb")
    processor = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=out, stderr=out)
    dead_letter = Path(influx_settings.dead_letter_path)
    try:
        deadline = time.monotonic() + 30
        while not (dead_letter.exists() and dead_letter.read_text()):  # the probe line: it is tailing now
            assert processor.poll() is None and time.monotonic() < deadline, (tmp_path / "processor.out").read_text()
            time.sleep(0.05)
        send(nginx.port, 6, 0)
        rotated = nginx.rotate()
        send(nginx.port, 6, 100)
        nginx.stop()  # flushes; the log files are complete now
        assert "+0545]" in nginx.access_log.read_text()  # the server's local time, as nginx users have it
        want, with_customer, without = expected_from_nginx_logs([rotated, nginx.access_log])
        assert with_customer == 12 * 7 and without == 12 * 2 + 1  # + the start-up probe (no header)
        deadline = time.monotonic() + 60
        while count_points(influx_settings) < with_customer:
            assert processor.poll() is None, (tmp_path / "processor.out").read_text()[-3000:]
            assert time.monotonic() < deadline, f"only {count_points(influx_settings)} of {with_customer} points"
            time.sleep(0.2)
        time.sleep(0.5)
        assert count_points(influx_settings) == with_customer  # nothing more (no made-up customer)
    finally:
        processor.terminate()
        processor.wait(30)
        nginx.stop()
    rejected = [json.loads(x) for x in dead_letter.read_text().splitlines()]
    assert len(rejected) == without
    assert all(r["reason"].startswith("no customer") for r in rejected)

    with running_api(env) as api:
        for customer, days in want.items():
            first, last = min(days), max(days)
            r = api.get(f"/customers/{customer}/stats", params={"from": first, "to": last})
            assert r.status_code == 200, r.text
            got = {d["date"]: d for d in r.json()["days"]}
            assert sorted(got) == sorted(days)
            for day, figures in days.items():
                for key, value in figures.items():
                    assert got[day][key] == pytest.approx(value, rel=1e-9), (customer, day, key)
        paths = httpx.get(
            f"{influx_settings.influxdb_url}/query",
            params={"db": influx_settings.influxdb_database, "q": 'SELECT "path" FROM "requests" LIMIT 5'},
        ).json()["results"][0]["series"][0]["values"]
        assert all(re.fullmatch(r"/s/\d+/d/\d+/item/\d+", p) for _, p in paths)  # query strings stripped
