"""Ingest benchmark: InfluxDB's ceiling vs `logpulse ingest`, API latency, processor RSS.

Everything runs against a private influxd started here, on data generated here, in one run:
  1. ceiling   the same requests as prebuilt line protocol POSTed to /write, PLAIN (no gzip) over a
               grid of batch sizes and parallelism (the best is "the ceiling"), and gzip level 1 at
               the best plain configuration -> points/s; and at the best, the points with the
               `anomaly_score` field default ingest writes (what scoring adds to influxd's work)
  2. ingest    `logpulse ingest` of the same files into an empty database: rollups on with raw points
               (scoring on and off), rollups on without raw points (STORE_RAW=false), INFLUXDB_GZIP on,
               and with --baseline-src the code of another checkout (e.g. main before rollups) in the
               same run -> lines/s end to end until durable, and peak RSS
  3. ratio     2 / best plain ceiling, per configuration; and the CPU ratio: CPU seconds per point of the
               plain ceiling (influxd + the writing client) / CPU seconds per line of the ingest (processor +
               influxd), the ratio both runs would show CPU-bound on the same cores (steadier than wall
               time on a shared machine; influxd's CPU read from /proc)
  3b. disk     bytes on disk per million requests, raw (`requests`) and rollups (all levels), after
               influxd compacted them (this private influxd snapshots and compacts after 2 s cold)
  4. API       p50/p99 and requests/s of GET /customers/{id}/stats over 30 days with the big data set
               stored, 1 client and 32 concurrent clients (wrk)
  5. RSS       processor peak RSS ingesting the small and the big data set

    .venv/bin/python -m scripts.benchmarks.ingest --lines 1000000 --big-lines 10000000 --json bench.json
    .venv/bin/python -m scripts.benchmarks.ingest --lines 1000000 --big-lines 0 --baseline-src /path/to/main/src
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from logpulse.config import Settings
from logpulse.formats.logpulse import parse_chunk
from logpulse.model import Chunk, ScoredBatch
from logpulse.storage import influxd as influxd_module
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd
from logpulse.storage.points import request_lines

from .support import CUSTOMERS, measure_stats, process_cpu_s, write_backfill
from .workloads import ingest_capped


def make_files(directory: Path, lines: int, files: int, days: float, seed: int) -> list[Path]:
    """`files` logs of `lines` lines in total: 50 customers over `days` days ending now."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return [
        write_backfill(directory / f"api_requests-{lines}-{files}-{i}.log", lines // files, days, seed + i, now)
        for i in range(files)
    ]


def _prebuilt(paths: list[Path], *, scored: bool = False) -> list[str]:
    """The raw points of the files; `scored`: with an `anomaly_score` field, as scoring writes them
    (stand-in scores: max(0, a normal draw) to 0.01, half of them 0 like requests faster than usual)."""
    lines: list[str] = []
    draws = np.random.default_rng(0)
    for path in paths:
        parsed = parse_chunk(Chunk(str(path), 1, 0, path.read_bytes()))
        for batch in parsed.batches.values():
            scores = np.maximum(0.0, draws.normal(size=len(batch))).round(2) if scored else None
            lines += request_lines(ScoredBatch(batch, scores))
    return lines


def ceiling(
    settings: Settings, lines: list[str], batch_points: int, parallelism: int, gzip: bool, influxd_pid: int | None
) -> dict:
    """Points/s of bare /write POSTs of prebuilt points (into an empty database each time), and the CPU
    seconds influxd and this client (its writing threads) spent on them."""
    batches = [lines[i : i + batch_points] for i in range(0, len(lines), batch_points)]
    conn = dataclasses.replace(
        Connection.from_settings(settings), gzip=gzip, database=f"ceiling_{batch_points}_{parallelism}_{gzip:d}"
    )
    writer = InfluxWriter(conn, pool_size=parallelism)
    retention.ensure_database(writer)
    influxd_cpu, client_cpu = process_cpu_s(influxd_pid), time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        list(pool.map(writer.write, batches))
    seconds = time.perf_counter() - started
    influxd_cpu, client_cpu = process_cpu_s(influxd_pid) - influxd_cpu, time.process_time() - client_cpu
    writer.query(f'DROP DATABASE "{conn.database}"', with_db=False)
    writer.close()
    return {
        "points": len(lines),
        "seconds": seconds,
        "points_per_s": len(lines) / seconds,
        "batch_points": batch_points,
        "parallelism": parallelism,
        "gzip": gzip,
        "influxd_cpu_s": influxd_cpu,
        "client_cpu_s": client_cpu,
    }


def ceilings(settings: Settings, paths: list[Path], influxd_pid: int | None) -> dict:
    """The plain ceiling: the best of a grid of batch sizes x parallelism; then gzip at the best, and
    the points with `anomaly_score` (what default ingest writes) at the best."""
    lines = _prebuilt(paths)
    grid = []
    for batch_points in (5_000, 10_000, 20_000):
        for parallelism in (2, 4):
            print(f"  ceiling plain, {batch_points} points x {parallelism} ...", flush=True)
            grid.append(ceiling(settings, lines, batch_points, parallelism, False, influxd_pid))
    best = max(grid, key=lambda r: r["points_per_s"])
    print("  ceiling gzip at the best plain configuration ...", flush=True)
    gz = ceiling(settings, lines, best["batch_points"], best["parallelism"], True, influxd_pid)
    print("  ceiling of scored points at the best plain configuration ...", flush=True)
    del lines  # not both sets of points in memory at once
    scored = _prebuilt(paths, scored=True)
    with_score = ceiling(settings, scored, best["batch_points"], best["parallelism"], False, influxd_pid)
    return {"plain": best, "gzip": gz, "scored": with_score, "grid": grid}


def _cold_compaction(original):  # type: ignore[no-untyped-def]
    """influxd config that snapshots the cache and compacts 2 s after writes stop (disk measurement)."""

    def config(*args):  # type: ignore[no-untyped-def]
        return (
            original(*args)
            .replace('cache-snapshot-write-cold-duration = "10m0s"', 'cache-snapshot-write-cold-duration = "2s"')
            .replace('compact-full-write-cold-duration = "4h0m0s"', 'compact-full-write-cold-duration = "2s"')
        )

    return config


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def disk_per_million(influx: LocalInfluxd, db: str, lines: int, wait_s: float = 20.0) -> dict:
    """Bytes on disk (TSM + WAL) per million requests of the raw and rollup retention policies."""
    time.sleep(wait_s)  # cold snapshot + full compaction (2 s each in this influxd's config)
    data, wal = influx.data_dir / "data" / db, influx.data_dir / "wal" / db
    raw = _du(data / "autogen") + _du(wal / "autogen")
    rollups = _du(data / "rollups") + _du(wal / "rollups")
    return {
        "lines": lines,
        "raw_bytes_per_million": raw * 1e6 / lines,
        "rollup_bytes_per_million": rollups * 1e6 / lines,
    }


def ingest(env: dict[str, str], paths: list[Path], workers: int, processes: int, influxd_pid: int | None) -> dict:
    """`ingest_once`, tried again once if it failed (a local cluster can fail to connect under load)."""
    try:
        return ingest_once(env, paths, workers, processes, influxd_pid)
    except RuntimeError as exc:
        print(f"  failed, trying again: {str(exc)[-300:]}", flush=True)
        return ingest_once(env, paths, workers, processes, influxd_pid)


def ingest_once(env: dict[str, str], paths: list[Path], workers: int, processes: int, influxd_pid: int | None) -> dict:
    """Run `logpulse ingest` as users do; wall time until it exits (everything durable), peak RSS, and
    the CPU seconds influxd spent meanwhile."""
    influxd_cpu = process_cpu_s(influxd_pid)
    run = ingest_capped(
        env, paths, cap_mb=float("inf"), options=["--workers", str(workers), "--processes", str(processes)]
    )
    if run.get("stopped"):
        raise RuntimeError(run["stopped"])
    return {**run, "influxd_cpu_s": process_cpu_s(influxd_pid) - influxd_cpu}


def api_latency(env: dict[str, str], work: Path) -> dict:
    """Stats latency over a 30-day range with the big data set stored (1 and 32 clients), with the
    answer cache (default) and without it (STATS_CACHE_S=0: every call aggregates in InfluxDB).
    The wrk measurement itself is `support.measure_stats`."""
    return {
        "cached": measure_stats(env, work, CUSTOMERS, 15),
        "uncached": measure_stats({**env, "STATS_CACHE_S": "0"}, work, CUSTOMERS, 15),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="data set for ceiling/ingest")
    ap.add_argument("--big-lines", type=int, default=10_000_000, help="data set for API latency and RSS (0 = skip)")
    ap.add_argument("--files", type=int, default=2, help="split each data set into this many files (partitions)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--settle-s", type=float, default=30, help="pause between loading and API measurement")
    ap.add_argument("--repeat", type=int, default=2, help="ingest runs per configuration (best counts)")
    ap.add_argument("--work-dir", type=Path, default=None, help="keep generated data here between runs")
    ap.add_argument("--json", type=Path, default=Path("bench_ingest.json"))
    ap.add_argument("--baseline-src", type=Path, default=None, help="also ingest with this src/ (e.g. main's)")
    ap.add_argument(
        "--configs",
        default="raw_on,raw_off,raw_on_unscored,raw_on_gzip",
        help="ingest configurations to run (comma-separated); the baseline runs with the first one's settings",
    )
    args = ap.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="logpulse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    influxd_module._config = _cold_compaction(influxd_module._config)  # type: ignore[attr-defined]
    with LocalInfluxd.start(work / "influxdb") as influx:

        def env_for(db: str, **extra: str) -> dict[str, str]:
            return {
                **os.environ,
                "LOGPULSE_ENV_FILE": "/nonexistent",
                "INFLUXDB_URL": influx.url,
                "INFLUXDB_DATABASE": db,
                "DEAD_LETTER_PATH": str(work / f"{db}.rejected.jsonl"),
                "LOG_LEVEL": "WARNING",
                **extra,
            }

        small = make_files(work, args.lines, args.files, args.days, seed=1)
        settings = Settings(_env_file=None, influxdb_url=influx.url, influxdb_database="ceiling")
        print(f"ceiling: {args.lines:,} points ...", flush=True)
        results["ceiling"] = ceilings(settings, small, influx.pid)
        configs: dict[str, dict[str, str]] = {
            "raw_on": {},
            "raw_off": {"STORE_RAW": "false"},
            "raw_off_unscored": {"STORE_RAW": "false", "SCORING_ENABLED": "false"},
            "raw_on_unscored": {"SCORING_ENABLED": "false"},
            "raw_on_gzip": {"INFLUXDB_GZIP": "true"},
        }
        configs = {k: configs[k] for k in args.configs.split(",")}
        if args.baseline_src:
            first = next(iter(configs.values()))
            configs = {"baseline": {**first, "PYTHONPATH": str(args.baseline_src.resolve())}, **configs}
        runs: dict[str, list[dict]] = {kind: [] for kind in configs}
        for rep in range(args.repeat):  # alternate, each into an empty database; the best run counts
            for kind, extra in configs.items():
                print(f"ingest ({kind}, run {rep + 1}): {args.lines:,} lines ...", flush=True)
                runs[kind].append(
                    ingest(env_for(f"{kind}{rep}", **extra), small, args.workers, args.processes, influx.pid)
                )
        plain = results["ceiling"]["plain"]
        plain_cpu_per_point = (plain["influxd_cpu_s"] + plain["client_cpu_s"]) / plain["points"]
        for kind, done in runs.items():
            best = max(done, key=lambda r: r["lines_per_s"])
            cpu_per_line = (best["cpu_s"] + best["influxd_cpu_s"]) / best["lines"]
            results[f"ingest_{kind}"] = {
                **best,
                "ratio_to_plain_ceiling": best["lines_per_s"] / plain["points_per_s"],
                "cpu_ratio_to_plain_ceiling": plain_cpu_per_point / cpu_per_line,
            }
            results[f"ingest_{kind}_runs"] = [r["lines_per_s"] for r in done]
        measured = "raw_on" if "raw_on" in configs else next(k for k in configs if k != "baseline")
        results["disk_of"] = measured
        results["disk"] = disk_per_million(
            influx, f"{measured}{args.repeat - 1}", results[f"ingest_{measured}"]["lines"]
        )
        if args.big_lines:
            big = make_files(work, args.big_lines, args.files, args.days, seed=100)
            print(f"ingest (big): {args.big_lines:,} lines ...", flush=True)
            results["ingest_big"] = ingest(env_for("big"), big, args.workers, args.processes, influx.pid)
            time.sleep(args.settle_s)  # let influxd finish compacting what was just written
            print("API latency ...", flush=True)
            results["api"] = api_latency(env_for("big"), work)
    args.json.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(r: dict) -> None:
    c = r["ceiling"]
    p = c["plain"]
    rows = [
        (
            f"InfluxDB ceiling, plain ({p['batch_points']:,} points x {p['parallelism']})",
            f"{p['points_per_s']:,.0f} points/s; CPU per point: influxd {p['influxd_cpu_s'] / p['points'] * 1e6:.2f} us"
            f" + client {p['client_cpu_s'] / p['points'] * 1e6:.2f} us",
        ),
        ("InfluxDB ceiling, gzip level 1 (same batches)", f"{c['gzip']['points_per_s']:,.0f} points/s"),
        (
            "InfluxDB ceiling, plain, points with anomaly_score",
            f"{c['scored']['points_per_s']:,.0f} points/s; CPU per point: influxd"
            f" {c['scored']['influxd_cpu_s'] / c['scored']['points'] * 1e6:.2f} us",
        ),
    ]
    names = {
        "baseline": "baseline (--baseline-src)",
        "raw_on": "rollups + raw points",
        "raw_off": "rollups only (STORE_RAW=false)",
        "raw_off_unscored": "rollups only, SCORING_ENABLED=false (the rollup cost shows best)",
        "raw_on_unscored": "rollups + raw points, SCORING_ENABLED=false",
        "raw_on_gzip": "rollups + raw points, INFLUXDB_GZIP=true",
    }
    for kind, name in names.items():
        if f"ingest_{kind}" in r:
            i = r[f"ingest_{kind}"]
            cpu = (
                f"; CPU per line: processor {i['cpu_s'] / i['lines'] * 1e6:.2f} us + influxd"
                f" {i['influxd_cpu_s'] / i['lines'] * 1e6:.2f} us ({i['cpu_ratio_to_plain_ceiling']:.2f} of plain)"
            )
            rows.append(
                (
                    f"ingest: {name}",
                    f"{i['lines_per_s']:,.0f} lines/s ({i['ratio_to_plain_ceiling']:.2f} of plain){cpu}",
                )
            )
    m = r[f"ingest_{r.get('disk_of', 'raw_on')}"]
    rows += [
        (
            f"peak RSS, {m['lines']:,} lines: all processes / largest",
            f"{m['peak_rss_mb']:.0f} / {m['peak_rss_one_process_mb']:.0f} MB",
        ),
        ("disk per million requests: raw points", f"{r['disk']['raw_bytes_per_million'] / 1e6:.1f} MB"),
        ("disk per million requests: rollups (15m + 1h + 1d)", f"{r['disk']['rollup_bytes_per_million'] / 1e6:.2f} MB"),
    ]
    if "ingest_big" in r:
        rows += [
            (
                f"peak RSS, {r['ingest_big']['lines']:,} lines: all processes / largest",
                f"{r['ingest_big']['peak_rss_mb']:.0f} / {r['ingest_big']['peak_rss_one_process_mb']:.0f} MB",
            ),
            (f"ingest, {r['ingest_big']['lines']:,} lines", f"{r['ingest_big']['lines_per_s']:,.0f} lines/s"),
        ]
    for mode, runs in r.get("api", {}).items():
        for a in runs.values():
            rows.append(
                (
                    f"stats 30 days, {mode}, {a['connections']} client(s): p50 / p99",
                    f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f} ms, {a['requests_per_s']:,.0f} req/s, "
                    f"{a['non_2xx']} errors",
                )
            )
    width = max(len(a) for a, _ in rows)
    print(f"| {'measure'.ljust(width)} | result |\n|{'-' * (width + 2)}|--------|")
    for a, b in rows:
        print(f"| {a.ljust(width)} | {b} |")


if __name__ == "__main__":
    main()
