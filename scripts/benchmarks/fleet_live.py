"""The fleet view beside a live processor: 1,000-row pages of `GET /stats` over the 30 days ending today,
first with nothing being written, then while `logpulse process` tails a log that gets --rate lines a
second of today's requests spread over every customer.

The data set is the API benchmark's fleet set (1,200 customers × 30 days), loaded once by
`python -m scripts.benchmarks.api --only fleet --data-dir DIR`; this benchmark copies DIR, so the set
stays as it was. The API runs cold (`STATS_CACHE_S=0`); its day replica answers once it holds the
days, and a live processor's `writes` marks make today's rows dirty, read again by the next answer.
The sorts rotate over p99_latency, median_latency, customer_id and total_requests (descending).
With --baseline-src a second API runs that source tree (another revision) on the same data beside the
same processor, and the answers alternate between the two (which goes first alternates too), so a
drift of the machine's load favours neither. Per API and phase: p50, p99 (nearest rank: with a few
dozen answers, the slowest or next to it), the slowest, and the API's CPU time per answer.

    .venv/bin/python -m scripts.benchmarks.fleet_live --data-dir /tmp/fleet-data --rate 2000 \\
        --json docs/bench/bench_fleet_live.json
    git archive main src | tar -x -C /tmp/base     # against main, same data, same run
    .venv/bin/python -m scripts.benchmarks.fleet_live --data-dir /tmp/fleet-data --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from logpulse.storage.influxd import LocalInfluxd

from .support import api_cpu_s, load_average, running_api

SORTS = ("p99_latency", "median_latency", "customer_id", "total_requests")


def answers(apis: dict[str, httpx.Client], frm: dt.date, to: dt.date, n: int) -> dict[str, dict[str, float]]:
    """n sequential 1,000-row pages from each API, sorts rotating, the APIs alternating (which goes
    first alternates by round): per API p50, p99, slowest (ms) and API CPU ms per answer."""
    took: dict[str, list[float]] = {name: [] for name in apis}
    cpu = {name: api_cpu_s(api) for name, api in apis.items()}
    for i in range(n):
        params = {"from": str(frm), "to": str(to), "limit": 1000, "sort": SORTS[i % len(SORTS)], "order": "desc"}
        for name in list(apis) if i % 2 == 0 else list(apis)[::-1]:
            started = time.perf_counter()
            r = apis[name].get("/stats", params=params, timeout=120)
            took[name].append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
    out = {}
    for name, times in took.items():
        times.sort()
        p99 = times[max(1, int(0.99 * n + 0.5)) - 1]
        out[name] = {
            "answers": n,
            "p50_ms": round(times[n // 2], 1),
            "p99_ms": round(p99, 1),
            "slowest_ms": round(times[-1], 1),
            "api_cpu_ms_per_answer": round((api_cpu_s(apis[name]) - cpu[name]) * 1000 / n, 1),
        }
    return out


def first_answers(apis: dict[str, httpx.Client], frm: dt.date, to: dt.date) -> dict[str, int]:
    """One 1,000-row page from each API, not measured with the others (it loads the replica's days): ms."""
    took = {}
    for name, api in apis.items():
        started = time.perf_counter()
        api.get("/stats", params={"from": str(frm), "to": str(to), "limit": 1000}, timeout=120).raise_for_status()
        took[name] = round((time.perf_counter() - started) * 1000)
    return took


def append_live(path: Path, rate: int, customers: int, stop: threading.Event) -> None:
    """Today's requests, `rate` a second in tenths of a second, as a live service's log grows."""
    rnd = random.Random(3)
    with path.open("a") as f:
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            f.write(
                "".join(
                    f"{now:%Y-%m-%d %H:%M:%S} cust_{rnd.randint(1, customers)} /x 200 {rnd.lognormvariate(-2, 1):.3f}\n"
                    for _ in range(rate // 10)
                )
            )
            f.flush()
            time.sleep(0.1)


def replica_metrics(api: httpx.Client) -> list[str]:
    """The API's `logpulse_fleet*` samples (answers by source, the replica's reads, entries, folds)."""
    return [
        line
        for line in api.get("/metrics").text.splitlines()
        if line.startswith("logpulse_fleet") and "_created" not in line
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="the API benchmark's loaded fleet data")
    ap.add_argument("--database", default="bench_fleet")
    ap.add_argument("--customers", type=int, default=1200)
    ap.add_argument("--rate", type=int, default=2000, help="lines a second the live log gets")
    ap.add_argument("--answers", type=int, default=24, help="answers measured in each phase")
    ap.add_argument("--settle-s", type=float, default=20.0, help="the processor runs this long before measuring")
    ap.add_argument("--json", type=Path, default=Path("bench_fleet_live.json"))
    ap.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="a src/ tree of another revision: its API answers too, alternating, beside the same processor",
    )
    args = ap.parse_args()
    if not (args.data_dir / "loaded").exists():
        raise SystemExit(f"{args.data_dir}: not a loaded data set (python -m scripts.benchmarks.api --only fleet ...)")

    work = Path(tempfile.mkdtemp(prefix="logpulse-bench-fleet-live-"))
    shutil.copytree(args.data_dir, work / "influxdb")
    log = work / "api_requests.log"
    log.write_text("")
    today = dt.datetime.now(dt.UTC).date()
    frm = today - dt.timedelta(days=29)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "load_average_start": load_average()}
    with LocalInfluxd.start(work / "influxdb") as influx:
        env = {
            **os.environ,
            "LOGPULSE_ENV_FILE": "/nonexistent",
            "INFLUXDB_URL": influx.url,
            "INFLUXDB_DATABASE": args.database,
            "STATS_CACHE_S": "0",
            "API_KEY": "",
            "LOG_LEVEL": "WARNING",
            "LOG_PATH": str(log),
            "RECOVERY_DIR": str(work / "recovery"),
            "DEAD_LETTER_PATH": str(work / "rejected.jsonl"),
            "SCORING_ENABLED": "false",
        }
        with contextlib.ExitStack() as stack:
            apis = {"current": stack.enter_context(running_api(env))}
            if args.baseline_src is not None:
                apis["baseline"] = stack.enter_context(running_api({**env, "PYTHONPATH": str(args.baseline_src)}))
            results["first_answer_ms"] = first_answers(apis, frm, today)
            results["idle"] = answers(apis, frm, today, args.answers)
            print(f"idle: {results['idle']}", flush=True)
            processor = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env)
            stop = threading.Event()
            writer = threading.Thread(target=append_live, args=(log, args.rate, args.customers, stop))
            writer.start()
            try:
                time.sleep(args.settle_s)
                # a starting processor writes a restart mark, which empties every replica: the first
                # answer after it reloads the month, reported apart from the measured ones
                results["first_live_answer_ms"] = first_answers(apis, frm, today)
                results["live"] = answers(apis, frm, today, args.answers)
                print(f"live, {args.rate:,} lines/s: {results['live']}", flush=True)
                results["replica_metrics"] = {name: replica_metrics(api) for name, api in apis.items()}
            finally:
                stop.set()
                writer.join()
                processor.terminate()
                processor.wait(60)
    results["load_average_end"] = load_average()
    args.json.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    print(f"load average {results['load_average_start']} -> {results['load_average_end']}; written {args.json}")


if __name__ == "__main__":
    main()
