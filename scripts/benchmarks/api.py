"""API benchmark: cold stats, series and the fleet view answered from rollups.

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
  - GET /stats?limit=--fleet-limit (1,000), 30 days, every sort key in both orders (customer_id,
    total_requests, failed_requests, uptime, median_latency, p99_latency), --fleet-rounds requests
    of each from one sequential client: p50 and p99 per sort; with --baseline-src the same requests
    go alternately to an API running that source tree (another revision, in the same run)
Raw `requests` points are not loaded: these answers never read them (only exact=true does).
Every wrk row also gives the API processes' CPU time per answer (steadier than latency when the
machine is shared), and the load average at the start and the end is recorded.

    .venv/bin/python -m scripts.benchmarks.api --json docs/bench/bench_api.json
    git archive main src | tar -x -C /tmp/base     # the fleet view against main, same data, same run
    .venv/bin/python -m scripts.benchmarks.api --only fleet --baseline-src /tmp/base/src --data-dir /tmp/fleet-data
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from logpulse.storage.influxd import LocalInfluxd

from .support import LEVELS, load_average, load_rollups, rollup_batches, running_api, wrk_urls


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


FLEET_SORTS = ("customer_id", "total_requests", "failed_requests", "uptime", "median_latency", "p99_latency")


def _quantiles_ms(times: list[float]) -> dict:
    """p50 and p99 by nearest rank (with a few dozen answers p99 is the slowest but at most one)."""
    ordered = sorted(times)

    def rank(q: float) -> float:
        return ordered[max(1, int(np.floor(q * len(ordered) + 0.5))) - 1]

    return {"n": len(times), "p50_ms": rank(0.5), "p99_ms": rank(0.99), "max_ms": ordered[-1]}


def fleet_sorts(env: dict[str, str], frm: str, to: str, limit: int, rounds: int, baseline_src: Path | None) -> dict:
    """Cold fleet pages of `limit` rows, every sort key in both orders, from one sequential client: per
    round every (sort, order) once, each to this tree's API and, with `baseline_src`, to one running that
    tree (which goes first alternates by round, so a drift of the machine's load favours neither).
    Every answer is checked (200, `limit` rows or every customer). Each API's first page of `limit`
    rows (by customer_id, before the rounds; it loads the replica of whole days where there is one) is
    reported on its own, and with the rest in "every sort, first included"."""
    times: dict[str, dict[str, list[float]]] = {"current": {s: [] for s in FLEET_SORTS}}
    first_page: dict[str, float] = {}
    if baseline_src is not None:
        times["baseline"] = {s: [] for s in FLEET_SORTS}
    with contextlib.ExitStack() as stack:
        apis = {"current": stack.enter_context(running_api(env))}
        if baseline_src is not None:
            apis["baseline"] = stack.enter_context(running_api({**env, "PYTHONPATH": str(baseline_src)}))
        for api in apis.values():  # warm-up: imports, connections, the known-customer list
            assert api.get("/stats", params={"from": frm, "to": to}).status_code == 200
        for name, api in apis.items():
            started = time.perf_counter()
            first = api.get("/stats", params={"from": frm, "to": to, "limit": limit}, timeout=120)
            first_page[name] = (time.perf_counter() - started) * 1000
            assert first.status_code == 200, first.text[:300]
        rows = len(apis["current"].get("/stats", params={"from": frm, "to": to, "limit": 1000}).json()["customers"])
        for i in range(rounds):
            names = list(apis) if i % 2 == 0 else list(apis)[::-1]
            for sort in FLEET_SORTS:
                for order in ("asc", "desc"):
                    for name in names:
                        params = {"from": frm, "to": to, "sort": sort, "order": order, "limit": limit}
                        started = time.perf_counter()
                        r = apis[name].get("/stats", params=params, timeout=120)
                        elapsed = (time.perf_counter() - started) * 1000
                        if r.status_code == 422 and name == "baseline":
                            continue  # a sort key the other revision does not have
                        assert r.status_code == 200 and len(r.json()["customers"]) == min(limit, rows), r.text[:300]
                        times[name][sort].append(elapsed)
            print(f"  round {i + 1}/{rounds} done", flush=True)
    out: dict = {"limit": limit, "rounds": rounds, "baseline_src": str(baseline_src) if baseline_src else None}
    for name, by_sort in times.items():
        out[name] = {sort: _quantiles_ms(t) for sort, t in by_sort.items() if t}
        out[name]["every sort"] = _quantiles_ms([x for t in by_sort.values() for x in t])
        out[name]["first page"] = first_page[name]
        out[name]["every sort, first included"] = _quantiles_ms(
            [first_page[name]] + [x for t in by_sort.values() for x in t]
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=30_000_000, help="stored requests of the big data set")
    ap.add_argument("--small-requests", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--fleet-requests", type=int, default=12_000_000)
    ap.add_argument("--fleet-customers", type=int, default=1200)
    ap.add_argument("--fleet-limit", type=int, default=1000, help="rows per page of the per-sort fleet measurement")
    ap.add_argument("--fleet-rounds", type=int, default=5, help="requests per sort and order (cold, sequential)")
    ap.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="a src/ tree of another revision: its API answers the same fleet requests, alternating",
    )
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
            print(f"measuring fleet pages of {args.fleet_limit} per sort ...", flush=True)
            results["fleet_sorts"] = fleet_sorts(
                {**env, "INFLUXDB_DATABASE": "bench_fleet"},
                frm,
                str(today),
                args.fleet_limit,
                args.fleet_rounds,
                args.baseline_src,
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
        sorts = results["fleet_sorts"]
        for name in ("current", "baseline"):
            for sort, q in sorts.get(name, {}).items():
                label = f"/stats limit {sorts['limit']} sort={sort} asc+desc ({name})"
                if not isinstance(q, dict):  # the API's first page (a replica loads its days)
                    rows.append((f"/stats limit {sorts['limit']} {sort} ({name})", f"{q:.0f} ms"))
                    continue
                rows.append(
                    (label, f"p50 {q['p50_ms']:.0f} ms  p99 {q['p99_ms']:.0f} ms  max {q['max_ms']:.0f} ms  n {q['n']}")
                )
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
