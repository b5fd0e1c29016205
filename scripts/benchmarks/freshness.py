"""Freshness: seconds from a line being appended to it being visible in the API, at a
steady append rate, with `logpulse process` tailing the file (default settings: recovery on).

A writer appends `--rate` lines/s in 10 ms blocks; twice a second one of the lines belongs to a new
probe customer (`probe_<n>`), whose append time is recorded. A prober polls
GET /customers/probe_<n>/stats until it answers 200 with the request counted.

    .venv/bin/python -m scripts.benchmarks.freshness --rate 10000 --seconds 60 --json bench_freshness.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from logpulse.storage.influxd import LocalInfluxd

from .support import running_api


def writer(path: Path, rate: float, seconds: float, probes: dict[str, float], stop: threading.Event) -> int:
    """Append `rate` lines/s; returns lines written."""
    written = 0
    n_probe = 0
    start = time.time()
    next_probe = start
    with open(path, "a") as f:
        while not stop.is_set() and time.time() - start < seconds:
            now = time.time()
            due = int((now - start) * rate) - written
            if due > 0:
                stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                block = [
                    f"{stamp} cust_{(written + i) % 50} /api/v1/items/{i % 97} 200 0.{i % 900 + 100}\n"
                    for i in range(due)
                ]
                probe = None
                if now >= next_probe:
                    probe = f"probe_{n_probe}"
                    block[-1] = f"{stamp} {probe} /api/v1/probe 200 0.100\n"
                    n_probe += 1
                    next_probe += 0.5
                f.write("".join(block))
                f.flush()
                if probe:
                    probes[probe] = time.time()
                written += due
            time.sleep(0.01)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--json", type=Path, default=Path("bench_freshness.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logpulse-fresh-"))
    log = work / "api.log"
    log.touch()
    with LocalInfluxd.start(work / "influxdb") as influx:
        env = {
            **os.environ,
            "LOGPULSE_ENV_FILE": "/nonexistent",
            "INFLUXDB_URL": influx.url,
            "INFLUXDB_DATABASE": "fresh",
            "LOG_PATH": str(log),
            "RECOVERY_DIR": str(work / "recovery"),
            "DEAD_LETTER_PATH": str(work / "rejected.jsonl"),
            "LOG_LEVEL": "WARNING",
        }
        proc = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env)
        probes: dict[str, float] = {}
        seen: dict[str, float] = {}
        stop = threading.Event()
        with running_api(env) as api:
            today = dt.datetime.now(dt.UTC).date().isoformat()
            t = threading.Thread(
                target=lambda: results.update(lines=writer(log, args.rate, args.seconds, probes, stop))
            )
            results: dict = {}
            t.start()
            deadline = time.time() + args.seconds + 60
            while time.time() < deadline and (t.is_alive() or len(seen) < len(probes)):
                for name, appended in list(probes.items()):
                    if name in seen:
                        continue
                    r = api.get(f"/customers/{name}/stats", params={"from": today, "to": today})
                    if r.status_code == 200 and r.json()["summary"]["total_requests"] == 1:
                        seen[name] = time.time() - appended
                time.sleep(0.02)
            stop.set()
            t.join()
        proc.terminate()
        proc.wait(60)
    lags = sorted(seen.values())

    def p(q: float) -> float:
        return lags[min(len(lags) - 1, int(q * len(lags)))]

    out = {
        "rate": args.rate,
        "seconds": args.seconds,
        "lines": results.get("lines"),
        "probes": len(probes),
        "visible": len(lags),
        "p50_s": statistics.median(lags),
        "p99_s": p(0.99),
        "max_s": lags[-1],
    }
    args.json.write_text(json.dumps(out, indent=2))
    print(
        f"| append rate | lines | probes seen | freshness p50 | p99 | max |\n|---|---|---|---|---|---|\n"
        f"| {args.rate:,.0f}/s | {out['lines']:,} | {len(lags)}/{len(probes)} | {out['p50_s']:.2f} s | "
        f"{out['p99_s']:.2f} s | {out['max_s']:.2f} s |"
    )


if __name__ == "__main__":
    main()
