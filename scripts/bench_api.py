"""API benchmark (issue 14): cold stats, series and the fleet view answered from rollups.

Starts a private influxd and loads, into three databases, the rollup points (15m, 1h and 1d levels,
histograms built by `storage.histogram` from synthetic millisecond durations) of:
  small  --small-requests (1M) requests over --customers (50) customers and --days (30) days
  big    --requests (30M) requests, same customers and days
  fleet  --fleet-requests (10M) requests over --fleet-customers (1,000) customers, 1h and 1d levels
         (the 15m level, which whole-day ranges never read, is left out to keep loading short)
then starts `logpulse serve` on each with STATS_CACHE_S=0 (every answer computed, nothing cached)
and measures with wrk (Lua scripts rotating customers):
  - 30-day stats, 1 client, small and big (the ratio of their p50 is the cost growth with traffic)
  - the same ratio over --pair-rounds alternating rounds: median of the per-round ratios and their spread
  - 30-day stats, 32 clients, big, with API_WORKERS=1 and =2, and with each --admission limit
    (API_CONCURRENCY: answers computed at once, the rest waiting in arrival order)
  - 30-day stats in America/New_York (hours at the day edges: 1h level), 1 client, big
  - series, 7 days at 15m, 1 client, big
  - GET /stats (fleet), 30 days, 1 client, default sort and sort=p99_latency&order=desc
Raw `requests` points are not loaded: these answers never read them (only exact=true does).
Every wrk row also gives the API processes' CPU time per answer (steadier than latency when the
machine is shared), and the load average at the start and the end is recorded.

    .venv/bin/python scripts/bench_api.py --json docs/bench/bench_api.json

`measure()` (30-day stats, 1 and 32 clients) is also used by scripts/bench_ingest.py.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from fixtures import running_api  # noqa: E402
from logpulse.model import RollupPoint  # noqa: E402
from logpulse.storage import fleet_table, retention  # noqa: E402
from logpulse.storage.histogram import LatencyHistogram  # noqa: E402
from logpulse.storage.influx import Connection, InfluxWriter  # noqa: E402
from logpulse.storage.influxd import LocalInfluxd  # noqa: E402
from logpulse.storage.points import ROLLUP_LEVELS, ROLLUP_RP, rollup_line  # noqa: E402

DB = "bench_api"
BATCH = 10_000
STATUSES = ("200", "201", "400", "401", "403", "404", "500")


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


# ----- rollups (issue 14) ---------------------------------------------------------------------

LEVELS = tuple((lvl.measurement, lvl.window_ns // 1_000_000_000) for lvl in ROLLUP_LEVELS)
WINDOW_S = 900


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


def _api_cpu_s(port: int) -> float:
    """CPU seconds so far of the `logpulse serve --port port` process and its children (API_WORKERS)."""
    procs: dict[int, tuple[int, float, str]] = {}  # pid: (parent, cpu s, command line)
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            procs[int(d.name)] = (int(stat[1]), (int(stat[11]) + int(stat[12])) / tick, cmd)
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
    answered = r["requests_per_s"] * seconds
    r["api_cpu_ms_per_request"] = (_api_cpu_s(port) - cpu) * 1000 / answered if answered else None
    return {"paths": len(paths), **r}


def measure_rollups(
    env: dict[str, str], work: Path, paths: dict[str, list[str]], plan: list[tuple[str, str, int]], seconds: int
) -> dict:
    """Start the API once; check every path answers 200; then wrk each (name, paths key, connections)."""
    out = {}
    with running_api(env) as api:
        for group in paths.values():
            for p in group[:5] + group[-5:]:
                r = api.get(p)
                assert r.status_code == 200, (p, r.text[:300])
        base = str(api.base_url).rstrip("/")
        for name, key, connections in plan:
            print(f"  {name} ...", flush=True)
            out[name] = wrk_urls(base, work, name, paths[key], connections, seconds)
    return out


def paired_ratio(env: dict[str, str], work: Path, stats: list[str], rounds: int, seconds: int) -> dict:
    """p50 of 30-day stats on the small and the big data set: two API processes side by side, short
    wrk runs alternating between them (small-big, then big-small, so that a drift of the machine's
    load favours neither), one ratio big/small per round. Reported: the median of the per-round
    ratios and their spread (min, quartiles, max), not the best-looking round."""
    p50: dict[str, list[float]] = {"small": [], "big": []}
    with (
        running_api({**env, "INFLUXDB_DATABASE": "bench_small"}) as small,
        running_api({**env, "INFLUXDB_DATABASE": "bench_big"}) as big,
    ):
        apis = {"small": small, "big": big}
        for i in range(rounds):
            for name in ("small", "big") if i % 2 == 0 else ("big", "small"):
                r = wrk_urls(str(apis[name].base_url).rstrip("/"), work, f"pair_{name}", stats, 1, seconds)
                p50[name].append(r["p50_ms"])
    ratios = [b / a for a, b in zip(p50["small"], p50["big"], strict=True)]
    quartiles = [float(q) for q in np.percentile(ratios, [0, 25, 50, 75, 100])]
    med = {k: float(np.median(v)) for k, v in p50.items()}
    return {
        "rounds": rounds,
        "seconds": seconds,
        "p50_ms": p50,
        "median_p50_ms": med,
        "ratios": ratios,
        "ratio_min_q1_median_q3_max": quartiles,
        "ratio": quartiles[2],
    }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=30_000_000, help="stored requests of the big data set")
    ap.add_argument("--small-requests", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--fleet-requests", type=int, default=10_000_000)
    ap.add_argument("--fleet-customers", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=15, help="wrk duration per measurement")
    ap.add_argument("--settle-s", type=float, default=20, help="pause after loading (influxd compaction)")
    ap.add_argument("--pair-rounds", type=int, default=10, help="alternating small/big rounds for the ratio")
    ap.add_argument("--pair-seconds", type=int, default=5, help="wrk duration of each small or big run of a round")
    ap.add_argument("--json", type=Path, default=Path("bench_api.json"))
    ap.add_argument(
        "--only",
        choices=("all", "fleet", "reads"),
        default="all",
        help="fleet: load and measure only the fleet data set; reads: only the per-customer ones (small, big)",
    )
    ap.add_argument(
        "--data-dir",
        type=Path,
        help="keep influxd's data here; a directory loaded by an earlier run with the same options is reused "
        "as is (no loading), so the server can also be started by hand to time single statements",
    )
    ap.add_argument(
        "--admission",
        type=lambda text: [int(v) for v in text.split(",") if v],
        default=[2, 4, 8, 16],
        help="API_CONCURRENCY limits to measure 32 clients with, comma-separated (empty: none)",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="logpulse-bench-api-"))
    data_dir = args.data_dir or work / "influxdb"
    reuse = args.data_dir is not None and (data_dir / "loaded").exists()
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    today = dt.datetime.now(dt.UTC).date()
    frm = (today - dt.timedelta(days=args.days - 1)).isoformat()
    week = (today - dt.timedelta(days=6)).isoformat()
    sets = {
        "small": (args.small_requests, args.customers, LEVELS),
        "big": (args.requests, args.customers, LEVELS),
        "fleet": (args.fleet_requests, args.fleet_customers, LEVELS[1:]),
    }
    if args.only == "fleet":
        sets = {"fleet": sets["fleet"]}
    elif args.only == "reads":
        sets = {k: sets[k] for k in ("small", "big")}
    results["load_average_start"] = load_average()
    with LocalInfluxd.start(data_dir) as influx:
        for name, (n, customers, levels) in sets.items():
            if reuse:
                break
            print(f"loading rollups of {n:,} requests, {customers} customers ({name}) ...", flush=True)
            results[f"load_{name}"] = load_rollups(
                influx.url, f"bench_{name}", rollup_batches(n, customers, args.days, levels, seed=7)
            )
        if not reuse:
            time.sleep(args.settle_s)
            (data_dir / "loaded").write_text(json.dumps(results["args"]))
        env = {**os.environ, "INFLUXDB_URL": influx.url, "API_KEY": "", "STATS_CACHE_S": "0"}
        ids = [f"cust_{c}" for c in range(1, args.customers + 1)]
        stats = [f"/customers/{c}/stats?from={frm}&to={today}" for c in ids]
        paths = {
            "stats": stats,
            "stats_ny": [f"{p}&tz=America/New_York" for p in stats],
            "series": [f"/customers/{c}/series?from={week}&to={today}&interval=15m" for c in ids],
            "fleet": [f"/stats?from={frm}&to={today}"],
            "fleet_p99": [f"/stats?from={frm}&to={today}&sort=p99_latency&order=desc&limit=20"],
        }
        if args.only in ("all", "reads"):
            print("measuring small ...", flush=True)
            results["small"] = measure_rollups(
                {**env, "INFLUXDB_DATABASE": "bench_small"},
                work,
                {"stats": stats},
                [("stats_1", "stats", 1)],
                args.seconds,
            )
            print("measuring big ...", flush=True)
            results["big"] = measure_rollups(
                {**env, "INFLUXDB_DATABASE": "bench_big"},
                work,
                {k: paths[k] for k in ("stats", "stats_ny", "series")},
                [
                    ("stats_1", "stats", 1),
                    ("stats_32", "stats", 32),
                    ("stats_ny_1", "stats_ny", 1),
                    ("series_1", "series", 1),
                ],
                args.seconds,
            )
            print("measuring 32 clients with API_WORKERS=2 ...", flush=True)
            results["big_2_workers"] = measure_rollups(
                {**env, "INFLUXDB_DATABASE": "bench_big", "API_WORKERS": "2"},
                work,
                {"stats": stats},
                [("stats_32", "stats", 32)],
                args.seconds,
            )
            for limit in args.admission:
                print(f"measuring 32 clients with API_CONCURRENCY={limit} ...", flush=True)
                results[f"big_admission_{limit}"] = measure_rollups(
                    {**env, "INFLUXDB_DATABASE": "bench_big", "API_CONCURRENCY": str(limit)},
                    work,
                    {"stats": stats},
                    [("stats_32", "stats", 32)],
                    args.seconds,
                )
            print("measuring the 30M / 1M ratio, alternating ...", flush=True)
            results["paired"] = paired_ratio(env, work, stats, args.pair_rounds, args.pair_seconds)
        if args.only in ("all", "fleet"):
            print("measuring fleet ...", flush=True)
            results["fleet"] = measure_rollups(
                {**env, "INFLUXDB_DATABASE": "bench_fleet"},
                work,
                {k: paths[k] for k in ("fleet", "fleet_p99")},
                [("fleet_1", "fleet", 1), ("fleet_p99_1", "fleet_p99", 1)],
                args.seconds,
            )
    results["load_average_end"] = load_average()

    def row(label: str, r: dict) -> tuple[str, str]:
        if r["requests_per_s"] == 0:
            return label, f"no answer within wrk's timeout {r['socket_errors']}"
        cpu = r.get("api_cpu_ms_per_request")
        return label, (
            f"p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  {r['requests_per_s']:,.0f} req/s  "
            + (f"API CPU {cpu:.1f} ms/req  " if cpu is not None else "")
            + f"non-2xx {r['non_2xx']} {r['socket_errors']}"
        )

    rows = []
    if args.only in ("all", "reads"):
        small, big, paired = results["small"], results["big"], results["paired"]
        results["ratio_p50_big_small"] = big["stats_1"]["p50_ms"] / small["stats_1"]["p50_ms"]
        lo, q1, med, q3, hi = paired["ratio_min_q1_median_q3_max"]
        rows += [
            row(f"stats 30 d, {args.small_requests:,} stored, 1 client", small["stats_1"]),
            row(f"stats 30 d, {args.requests:,} stored, 1 client", big["stats_1"]),
            ("p50 ratio big / small (the two runs above)", f"{results['ratio_p50_big_small']:.2f}"),
            (
                f"p50 ratio big / small, {args.pair_rounds} alternating rounds",
                f"median {med:.2f} (min {lo:.2f}, quartiles {q1:.2f}–{q3:.2f}, max {hi:.2f}; median p50 "
                f"{paired['median_p50_ms']['big']:.1f} / {paired['median_p50_ms']['small']:.1f} ms)",
            ),
            row(f"stats 30 d, {args.requests:,} stored, 32 clients", big["stats_32"]),
            row("  the same with API_WORKERS=2", results["big_2_workers"]["stats_32"]),
            *(
                row(f"  the same with API_CONCURRENCY={limit}", results[f"big_admission_{limit}"]["stats_32"])
                for limit in args.admission
            ),
            row("stats 30 d America/New_York, 1 client", big["stats_ny_1"]),
            row("series 7 d at 15m, 1 client", big["series_1"]),
        ]
    if args.only in ("all", "fleet"):
        fleet = results["fleet"]
        rows += [
            row(f"/stats {args.fleet_customers:,} customers 30 d, 1 client", fleet["fleet_1"]),
            row("/stats sort=p99_latency desc limit 20", fleet["fleet_p99_1"]),
        ]
    print(
        f"\ncold (STATS_CACHE_S=0), {args.customers} customers, {args.days} days; fleet "
        f"{args.fleet_customers:,} customers; load average {results['load_average_start']} at the start, "
        f"{results['load_average_end']} at the end"
    )
    for k, v in rows:
        print(f"| {k:<48} | {v} |")
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
