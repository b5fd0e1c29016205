"""Stats API benchmark (issue 5): p50/p99 and requests/s of GET /customers/{id}/stats, 30-day range.

Starts a private influxd, loads N requests (default 10M over 50 customers and 30 days) as direct
writes of points.py's line protocol, starts `logpulse serve`, and measures with wrk (a Lua
script rotating customers) sequentially (1 connection) and with 32 connections, with the answer
cache on (default STATS_CACHE_S) and off (STATS_CACHE_S=0: every call aggregates in InfluxDB).
Prints a table and writes JSON.

    .venv/bin/python scripts/bench_api.py --requests 1000000 --json bench_api.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures import running_api  # noqa: E402
from logpulse.model import RequestBatch, ScoredBatch  # noqa: E402
from logpulse.storage.influx import Connection, InfluxWriter  # noqa: E402
from logpulse.storage.influxd import LocalInfluxd  # noqa: E402
from logpulse.storage.points import request_lines  # noqa: E402

DB = "bench_api"
BATCH = 10_000
STATUSES = ("200", "201", "400", "401", "403", "404", "500")


def _batches(n: int, customers: int, days: int, seed: int) -> Iterator[list[str]]:
    """Line-protocol batches built by points.py (the processor's schema); timestamps unique per
    customer, spread evenly over `days` days ending now."""
    rng = random.Random(seed)
    end_ns = time.time_ns()
    span_ns = days * 86_400 * 1_000_000_000
    per_customer = n // customers
    step = span_ns // max(per_customer, 1)
    for c in range(1, customers + 1):
        first = end_ns - span_ns + step
        for lo in range(0, per_customer, BATCH):
            size = min(BATCH, per_customer - lo)
            batch = RequestBatch(
                f"cust_{c}",
                [first + (lo + i) * step for i in range(size)],
                [f"/api/v1/resource{rng.randint(1, 4)}" for _ in range(size)],
                [rng.choice(STATUSES) for _ in range(size)],
                [f"{rng.uniform(0.1, 2.0):.3f}" for _ in range(size)],
            )
            yield request_lines(ScoredBatch(batch, [0.0] * size))


def load(url: str, n: int, customers: int, days: int) -> dict:
    """Write the data set with 4 parallel writes through logpulse's InfluxWriter; returns points/s."""
    writer = InfluxWriter(Connection(url=url, database=DB), pool_size=4)
    try:
        writer.ensure_database()

        def post(lines: list[str]) -> int:
            writer.write(lines)
            return len(lines)

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            written = sum(pool.map(post, _batches(n, customers, days, 7)))
        seconds = time.perf_counter() - started
    finally:
        writer.close()
    return {"points": written, "seconds": seconds, "points_per_s": written / seconds}


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
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock.group(1) if sock else "",
    }


def measure(env: dict[str, str], work: Path, customers: int, seconds: int) -> dict:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seconds", type=int, default=15, help="wrk duration per measurement")
    ap.add_argument("--settle-s", type=float, default=20, help="pause after loading (influxd compaction)")
    ap.add_argument("--json", type=Path, default=Path("bench_api.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="logpulse-bench-api-"))
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    with LocalInfluxd.start(work / "influxdb") as influx:
        print(f"loading {args.requests:,} requests ...", flush=True)
        results["load"] = load(influx.url, args.requests, args.customers, args.days)
        time.sleep(args.settle_s)
        env = {**os.environ, "INFLUXDB_URL": influx.url, "INFLUXDB_DATABASE": DB, "API_KEY": ""}
        for mode, extra in (("cached", {}), ("uncached", {"STATS_CACHE_S": "0"})):
            print(f"measuring {mode} ...", flush=True)
            results[mode] = measure({**env, **extra}, work, args.customers, args.seconds)

    rows = [("load", f"{results['load']['points_per_s']:,.0f} points/s")]
    for mode in ("cached", "uncached"):
        for r in results[mode].values():
            rows.append(
                (
                    f"stats 30 d, {mode}, {r['connections']} client(s)",
                    f"p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  {r['requests_per_s']:,.0f} req/s  "
                    f"non-2xx {r['non_2xx']} {r['socket_errors']}",
                )
            )
    print(f"\n{args.requests:,} requests stored, {args.customers} customers, {args.days} days")
    for k, v in rows:
        print(f"| {k:<40} | {v} |")
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
