"""InfluxDB's CPU per rollup point by shape: which part of a rollup write influxd spends its time on.

Rollup points of --lines synthetic requests of --customers customers over one day at the three levels
(`support.rollup_batches`: the processor's schema and histogram encoding), written into a fresh influxd
for each variant, which measures the CPU influxd used (from /proc, until a short settle after the last
write) per point:
  - as the sink writes them (WRITE_BATCH_POINTS 10,000, WRITE_PARALLELISM 2, series after series)
  - other request sizes and parallelism, the points shuffled (series interleaved)
  - the same points without `hist`, and with `count` alone (what fields cost)
Variants run in rounds (--rounds), alternating, so a shared machine's load spreads over all of them.

    .venv/bin/python -m scripts.benchmarks.influxd_points --json docs/bench/bench_influxd_points.json
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd
from logpulse.storage.points import ROLLUP_LEVELS, ROLLUP_RP

from .support import load_average, process_cpu_s, rollup_batches

LEVELS = tuple((lvl.measurement, lvl.window_ns // 10**9) for lvl in ROLLUP_LEVELS)


def only_fields(keep: Callable[[str], bool]) -> Callable[[str], str]:
    """A point with only the fields `keep` accepts (hist never holds `,` or ` `: base64 and `;`)."""

    def rewrite(line: str) -> str:
        series, fields, time_ns = line.split(" ")
        return f"{series} {','.join(f for f in fields.split(',') if keep(f.split('=', 1)[0]))} {time_ns}"

    return rewrite


def variants(points: list[str]) -> dict[str, tuple[list[str], int, int]]:
    """name: (points in write order, points per request, parallel requests)."""
    shuffled = points.copy()
    random.Random(1).shuffle(shuffled)
    return {
        "as written (10,000 a request, 2 parallel)": (points, 10_000, 2),
        "2,000 a request": (points, 2_000, 2),
        "50,000 a request": (points, 50_000, 2),
        "1 request at a time": (points, 10_000, 1),
        "4 parallel": (points, 10_000, 4),
        "series interleaved (shuffled)": (shuffled, 10_000, 2),
        "without hist": (list(map(only_fields(lambda f: f != "hist"), points)), 10_000, 2),
        "count only": (list(map(only_fields(lambda f: f == "count"), points)), 10_000, 2),
    }


def write_all(work: Path, points: list[str], size: int, parallel: int) -> dict:
    """Write `points` into a fresh influxd; its CPU and the wall time of the writes."""
    with LocalInfluxd.start(Path(tempfile.mkdtemp(prefix="influxd-", dir=work))) as influx:
        writer = InfluxWriter(Connection(url=influx.url, database="points"), pool_size=parallel)
        try:
            retention.ensure_database(writer)
            before, started = process_cpu_s(influx.pid), time.perf_counter()
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(lambda i: writer.write(points[i : i + size], rp=ROLLUP_RP), range(0, len(points), size)))
            seconds = time.perf_counter() - started
            time.sleep(1.0)  # what the writes set off (cache snapshots) counts too
            cpu = process_cpu_s(influx.pid) - before
        finally:
            writer.close()
    return {"seconds": seconds, "influxd_cpu_s": cpu, "us_per_point": cpu / len(points) * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--customers", type=int, default=3_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench_influxd_points.json"))
    args = ap.parse_args()
    points = [p for batch in rollup_batches(args.lines, args.customers, 1, LEVELS, seed=7, fleet=False) for p in batch]
    work = Path(tempfile.mkdtemp(prefix="logpulse-influxd-points-"))
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "points": len(points)}
    results["load_average_before"] = load_average()
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name, (pts, size, parallel) in variants(points).items():
            run = write_all(work, pts, size, parallel)
            runs.setdefault(name, []).append(run)
            print(f"{name}: {run['us_per_point']:.1f} µs of influxd CPU a point, {run['seconds']:.2f} s", flush=True)
    results["load_average_after"] = load_average()
    results["runs"] = runs
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    load = f"{results['load_average_before']} -> {results['load_average_after']}"
    print(f"\n{len(points):,} rollup points; load average {load}")
    print("| variant | influxd CPU µs a point (each round) | best |\n| --- | --- | --- |")
    for name, rs in runs.items():
        each = ", ".join(f"{r['us_per_point']:.1f}" for r in rs)
        print(f"| {name} | {each} | {min(r['us_per_point'] for r in rs):.1f} |")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
