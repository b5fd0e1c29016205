#!/usr/bin/env python3
"""Ingest benchmark (issue 5): InfluxDB's ceiling vs `logpulse ingest`, API latency, processor RSS.

Everything runs against a private influxd started here, on data generated here, in one run:
  1. ceiling   the same requests as prebuilt line protocol POSTed to /write with logpulse's batch
               size, gzip level and parallelism -> points/s
  2. ingest    `logpulse ingest` of the same files into an empty database, scoring on (and off, for
               the cost of scoring) -> lines/s end to end until durable, and peak RSS
  3. ratio     2 / 1
  4. API       p50/p99 and requests/s of GET /customers/{id}/stats over 30 days with the big data set
               stored, 1 client and 32 concurrent clients (wrk)
  5. RSS       processor peak RSS ingesting the small and the big data set

    .venv/bin/python scripts/bench_ingest.py --lines 1000000 --big-lines 10000000 --json bench.json
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_api import measure  # noqa: E402
from logpulse.config import Settings  # noqa: E402
from logpulse.formats.logpulse import parse_chunk  # noqa: E402
from logpulse.generator import GeneratorOptions, generate  # noqa: E402
from logpulse.model import Chunk, ScoredBatch  # noqa: E402
from logpulse.storage.influx import Connection, InfluxWriter  # noqa: E402
from logpulse.storage.influxd import LocalInfluxd  # noqa: E402
from logpulse.storage.points import request_lines  # noqa: E402

CUSTOMERS = 50


def make_files(directory: Path, lines: int, files: int, days: float, seed: int) -> list[Path]:
    """`files` logs of `lines` lines in total: 50 customers over `days` days ending now."""
    paths = []
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(files):
        path = directory / f"api_requests-{lines}-{files}-{i}.log"
        if not path.exists():
            # the backfill alone: `lines` requests spread evenly over `days` days ending now
            generate(
                GeneratorOptions(
                    out=path,
                    count=lines // files,
                    rate=lines / files / (days * 86400),
                    customers=CUSTOMERS,
                    days=days,
                    seed=seed + i,
                    mode="live",
                    incidents=0,
                    now=now,
                    backfill_max_lines=None,
                )
            )
        paths.append(path)
    return paths


def ceiling(settings: Settings, paths: list[Path], parallelism: int) -> dict:
    """Points/s of bare /write POSTs of the same points, prebuilt, logpulse's batch size and gzip."""
    lines: list[str] = []
    for path in paths:
        data = path.read_bytes()
        parsed = parse_chunk(Chunk(str(path), 1, 0, data))
        for batch in parsed.batches.values():
            lines += request_lines(ScoredBatch(batch))
    step = settings.write_batch_points
    batches = [lines[i : i + step] for i in range(0, len(lines), step)]
    writer = InfluxWriter(Connection.from_settings(settings), pool_size=parallelism)
    writer.ensure_database()
    started = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        list(pool.map(writer.write, batches))
    seconds = time.perf_counter() - started
    writer.close()
    return {
        "points": len(lines),
        "seconds": seconds,
        "points_per_s": len(lines) / seconds,
        "batch_points": step,
        "parallelism": parallelism,
    }


def _tree_rss_kb(pid: int) -> tuple[int, int]:
    """Resident set size (kB) of a process and all its descendants, and of the largest one, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        m = re.search(r"VmRSS:\s+(\d+)", status)
        rss[int(entry)] = int(m.group(1)) if m else 0
    total, largest, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        largest = max(largest, rss.get(p, 0))
        todo += children.get(p, [])
    return total, largest


def ingest(env: dict[str, str], paths: list[Path], workers: int, processes: int) -> dict:
    """Run `logpulse ingest` as users do; wall time until it exits (everything durable), peak RSS."""
    cmd = [
        sys.executable,
        "-m",
        "logpulse",
        "ingest",
        *map(str, paths),
        "--workers",
        str(workers),
        "--processes",
        str(processes),
    ]
    peak = peak_one = 0
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_one
        while not stop.wait(0.2):
            total, largest = _tree_rss_kb(proc.pid)
            peak, peak_one = max(peak, total), max(peak_one, largest)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed ({proc.returncode}): {err[-2000:]}")
    read = int(re.search(r"read (\d+) lines", out).group(1))
    return {
        "lines": read,
        "seconds": seconds,
        "lines_per_s": read / seconds,
        "peak_rss_mb": peak / 1024,
        "peak_rss_one_process_mb": peak_one / 1024,
        "summary": out.strip(),
    }


def api_latency(env: dict[str, str], work: Path) -> dict:
    """Stats latency over a 30-day range with the big data set stored (1 and 32 clients), with the
    answer cache (default) and without it (STATS_CACHE_S=0: every call aggregates in InfluxDB).
    The wrk measurement itself is scripts/bench_api.py's."""
    return {
        "cached": measure(env, work, CUSTOMERS, 15),
        "uncached": measure({**env, "STATS_CACHE_S": "0"}, work, CUSTOMERS, 15),
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
    args = ap.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="logpulse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
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
        parallelism = settings.write_parallelism * args.workers * args.processes
        print(f"ceiling: {args.lines:,} points ...", flush=True)
        results["ceiling"] = ceiling(settings, small, parallelism)
        runs: dict[str, list[dict]] = {"scored": [], "unscored": []}
        for rep in range(args.repeat):  # alternate, each into an empty database; the best run counts
            for kind, extra in (("scored", {}), ("unscored", {"SCORING_ENABLED": "false"})):
                print(
                    f"ingest (scoring {'on' if kind == 'scored' else 'off'}, run {rep + 1}): {args.lines:,} lines ...",
                    flush=True,
                )
                runs[kind].append(ingest(env_for(f"{kind}{rep}", **extra), small, args.workers, args.processes))
        for kind, done in runs.items():
            results[f"ingest_{kind}"] = max(done, key=lambda r: r["lines_per_s"])
            results[f"ingest_{kind}_runs"] = [r["lines_per_s"] for r in done]
        results["ratio"] = results["ingest_scored"]["lines_per_s"] / results["ceiling"]["points_per_s"]
        results["scoring_cost"] = (
            1 - results["ingest_scored"]["lines_per_s"] / results["ingest_unscored"]["lines_per_s"]
        )
        if args.big_lines:
            big = make_files(work, args.big_lines, args.files, args.days, seed=100)
            print(f"ingest (big): {args.big_lines:,} lines ...", flush=True)
            results["ingest_big"] = ingest(env_for("big"), big, args.workers, args.processes)
            time.sleep(args.settle_s)  # let influxd finish compacting what was just written
            print("API latency ...", flush=True)
            results["api"] = api_latency(env_for("big"), work)
    args.json.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(r: dict) -> None:
    rows = [
        ("InfluxDB ceiling (prebuilt line protocol)", f"{r['ceiling']['points_per_s']:,.0f} points/s"),
        ("logpulse ingest, scoring on", f"{r['ingest_scored']['lines_per_s']:,.0f} lines/s"),
        ("logpulse ingest, scoring off", f"{r['ingest_unscored']['lines_per_s']:,.0f} lines/s"),
        ("ingest / ceiling", f"{r['ratio']:.0%}"),
        ("cost of scoring", f"{r['scoring_cost']:.0%}"),
        (
            f"peak RSS, {r['ingest_scored']['lines']:,} lines: all processes / largest",
            f"{r['ingest_scored']['peak_rss_mb']:.0f} / {r['ingest_scored']['peak_rss_one_process_mb']:.0f} MB",
        ),
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
