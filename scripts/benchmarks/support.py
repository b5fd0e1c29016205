"""What the benchmarks share: the API as a subprocess, wrk load, generated logs and rollups.

Each benchmark is a module of this package, run from the repository root as
`python -m scripts.benchmarks.NAME`; they import this module and the product (`logpulse`), never the
tests and never each other. A private influxd comes from the product itself
(`logpulse.storage.influxd.LocalInfluxd`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from logpulse.generator import GeneratorOptions, generate
from logpulse.model import RollupPoint
from logpulse.ports import free_port
from logpulse.storage import fleet_table, retention
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_LEVELS, ROLLUP_RP, rollup_line

ROOT = Path(__file__).resolve().parents[2]
"""The repository's top folder: benchmarks run from here (`python -m scripts.benchmarks.NAME`)."""

CUSTOMERS = 50
"""Customers of the generated backfills (`write_backfill`)."""


@contextlib.contextmanager
def running_api(env: dict[str, str], timeout_s: float = 60.0) -> Iterator[httpx.Client]:
    """`logpulse serve` on a free loopback port with `env`; yields an httpx client with that base URL
    once /healthz answers, and stops the process by its pid at the end. Its output goes to a
    temporary file (a pipe nobody reads would block a chatty server), shown if it exits early."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "logpulse", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                deadline = time.monotonic() + timeout_s
                while True:
                    if proc.poll() is not None:
                        output.seek(0)
                        raise RuntimeError(f"API exited with {proc.returncode}: {output.read()[-3000:]}")
                    with contextlib.suppress(httpx.TransportError):
                        if client.get("/healthz").status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError("API did not start")
                    time.sleep(0.1)
                yield client
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ----- wrk ------------------------------------------------------------------------------------------


def wrk(base: str, lua: Path, connections: int, seconds: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(connections, 2)),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "--timeout",
            "10s",  # slow answers are measured, not dropped as wrk's default 2 s timeouts
            "-s",
            str(lua),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock.group(1) if sock else "",
    }


def measure_stats(env: dict[str, str], work: Path, customers: int, seconds: int) -> dict:
    """30-day stats of rotating customers, 1 and 32 clients (every customer's answer checked first)."""
    today = dt.datetime.now(dt.UTC).date()
    frm = (today - dt.timedelta(days=29)).isoformat()
    lua = work / "stats.lua"
    lua.write_text(
        "local i = 0\nrequest = function()\n"
        f"  i = (i % {customers}) + 1\n"
        f'  return wrk.format("GET", "/customers/cust_" .. i .. "/stats?from={frm}&to={today}")\n'
        "end\n"
    )
    with running_api(env) as api:
        for c in range(1, customers + 1):  # warm-up, and a check that every answer is complete
            r = api.get(f"/customers/cust_{c}/stats", params={"from": frm, "to": str(today)})
            assert r.status_code == 200, r.text
        base = str(api.base_url).rstrip("/")
        return {"single": wrk(base, lua, 1, seconds), "concurrent_32": wrk(base, lua, 32, seconds)}


def _parent_and_cpu_s(proc_dir: Path) -> tuple[int, float]:
    """A process's parent pid and CPU seconds so far (user + system), from its /proc directory."""
    stat = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()
    return int(stat[1]), (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds so far of one process."""
    return _parent_and_cpu_s(Path(f"/proc/{pid}"))[1]


def api_cpu_s(api: httpx.Client) -> float:
    """CPU seconds so far of the API `running_api` started (and its workers)."""
    port = api.base_url.port
    if port is None:
        raise ValueError(f"{api.base_url}: no port")
    return _api_cpu_s(port)


def _api_cpu_s(port: int) -> float:
    """CPU seconds so far of the `logpulse serve --port port` process and its children (API_WORKERS)."""
    procs: dict[int, tuple[int, float, str]] = {}  # pid: (parent, cpu s, command line)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent, cpu = _parent_and_cpu_s(d)
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            procs[int(d.name)] = (parent, cpu, cmd)
    roots = {pid for pid, (_, _, cmd) in procs.items() if " serve " in cmd and f"--port {port} " in f"{cmd} "}
    return sum(cpu for pid, (parent, cpu, _) in procs.items() if pid in roots or parent in roots)


def wrk_urls(base: str, work: Path, name: str, paths: list[str], connections: int, seconds: int) -> dict:
    """wrk over `paths` in rotation; with the API's CPU time per answered request (steadier than
    latency on a shared machine: other work delays answers but does not add to their CPU time)."""
    lua = work / f"{name}.lua"
    table = ", ".join(json.dumps(p) for p in paths)
    lua.write_text(
        f"local paths = {{{table}}}\nlocal i = 0\nrequest = function()\n"
        '  i = (i % #paths) + 1\n  return wrk.format("GET", paths[i])\nend\n'
    )
    port = int(base.rsplit(":", 1)[1])
    cpu = _api_cpu_s(port)
    r = wrk(base, lua, connections, seconds)
    r["api_cpu_s"] = _api_cpu_s(port) - cpu
    r["api_cpu_ms_per_request"] = r["api_cpu_s"] * 1000 / r["requests"] if r["requests"] else None
    return {"paths": len(paths), **r}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ----- generated data ------------------------------------------------------------------------------

LEVELS = tuple((lvl.measurement, lvl.window_ns // 1_000_000_000) for lvl in ROLLUP_LEVELS)
"""(measurement, window seconds) of every rollup level."""
MAX_EXACT = {lvl.measurement: lvl.max_exact for lvl in ROLLUP_LEVELS}


def _rollup_line(
    measurement: str,
    customer: str,
    window_s: int,
    ms: np.ndarray,
    failed: int,
    server: int,
    tables: tuple[str, ...] = (),
) -> str:
    """One rollup point in the processor's schema (points.rollup_line), histogram by storage.histogram
    with the level's bound on exact distinct values, as the processor builds it."""
    hist = LatencyHistogram(MAX_EXACT[measurement])
    hist.add(ms / 1000.0)
    return rollup_line(
        RollupPoint(
            measurement=measurement,
            customer_id=customer,
            time_ns=window_s * 1_000_000_000 + 7,
            window_ns=0,
            count=len(ms),
            failed=failed,
            server_errors=server,
            sum_ns=int(ms.sum()) * 1_000_000,
            hist=hist.encode(),
            tables=tables,
        )
    )


def rollup_batches(
    n: int, customers: int, days: int, levels: tuple[tuple[str, int], ...], seed: int, fleet: bool = True
) -> Iterator[list[str]]:
    """Rollup points of n synthetic requests, per customer and day: durations lognormal around a
    per-customer median (whole milliseconds, as logs have them), 3% failed (a third of them 5xx), uniform in time; with
    `fleet`, then the fleet-wide points (customer `*`, every customer together, with the packed
    per-customer tables) as the processor writes them."""
    rng = np.random.default_rng(seed)
    per_day = n // (customers * days)
    first_day = (time.time_ns() // 1_000_000_000) // 86_400 * 86_400 - (days - 1) * 86_400
    everyone: dict[tuple[str, int], list[tuple[str, np.ndarray, int, int]]] = {}
    for c in range(1, customers + 1):
        customer = f"cust_{c}"
        median_ms = rng.uniform(40, 400)
        lines: list[str] = []
        for d in range(days):
            day_s = first_day + d * 86_400
            seconds = np.sort(rng.integers(0, 86_400, per_day))
            ms = np.maximum(1, np.rint(median_ms * rng.lognormal(0.0, 0.6, per_day))).astype(np.int64)
            draw = rng.random(per_day)
            failed, server = draw < 0.03, draw < 0.01
            for measurement, length in levels:
                edges = np.searchsorted(seconds, np.arange(0, 86_400 + 1, length))
                for i in range(len(edges) - 1):
                    lo, hi = edges[i], edges[i + 1]
                    if hi > lo:
                        f, e = int(failed[lo:hi].sum()), int(server[lo:hi].sum())
                        lines.append(_rollup_line(measurement, customer, day_s + i * length, ms[lo:hi], f, e))
                        if fleet:
                            part = (customer, ms[lo:hi], f, e)
                            everyone.setdefault((measurement, day_s + i * length), []).append(part)
        yield lines
    fleet_lines = [
        _rollup_line(
            m,
            "*",
            w,
            np.concatenate([a for _, a, _, _ in parts]),
            sum(f for _, _, f, _ in parts),
            sum(e for _, _, _, e in parts),
            fleet_table.encode_parts([(c, len(a), f, e, int(a.sum()) * 1_000_000) for c, a, f, e in parts]),
        )
        for (m, w), parts in everyone.items()
    ]
    for i in range(0, len(fleet_lines), 1000):
        yield fleet_lines[i : i + 1000]


def load_rollups(url: str, db: str, batches: Iterator[list[str]]) -> dict:
    """Write rollup points with 4 parallel writes through logpulse's InfluxWriter."""
    writer = InfluxWriter(Connection(url=url, database=db), pool_size=4)
    try:
        retention.ensure_database(writer)

        def post(lines: list[str]) -> int:
            for i in range(0, len(lines), 5_000):
                writer.write(lines[i : i + 5_000], rp=ROLLUP_RP)
            return len(lines)

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            written = sum(pool.map(post, batches))
        seconds = time.perf_counter() - started
    finally:
        writer.close()
    return {"points": written, "seconds": seconds}


def write_backfill(path: Path, lines: int, days: float, seed: int, now: dt.datetime) -> Path:
    """`lines` requests of 50 customers spread evenly over `days` days ending at `now`, written to a
    temporary name and renamed, so an interrupted run never leaves a short file to be reused."""
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        generate(
            GeneratorOptions(
                out=tmp,
                count=lines,
                rate=lines / (days * 86400),
                customers=CUSTOMERS,
                days=days,
                seed=seed,
                mode="live",
                incidents=0,
                now=now,
                backfill_max_lines=None,
            )
        )
        tmp.rename(path)
    return path
