"""Compaction benchmark: cold 30-day stats as late data multiplies the points of each window, then after
`logpulse compact`, and the rollups' disk use before and after.

Loads, into a private influxd, the rollup points (all levels, one point per customer-window, as
`scripts.benchmarks.api`) of --requests over --customers and --days; measures 30-day stats (UTC, 1
client, STATS_CACHE_S=0); then writes --late-requests more for the same customers and days as
--identities separate rollup identities (each a file segment: its own time offset in the window, with
its own fleet-wide `*` point and table) at the 1d level — the level a UTC 30-day range reads — and
measures again; runs `logpulse compact` (timed) and measures again, with the series (7 days at 15m). The
data directory of the `rollups` retention policy is measured with `du` after each step (after a pause
for influxd to write its cache to disk), and answers are measured once influxd is quiet again.

Besides wrk's latencies, each measurement states the CPU time per answer of the API and of influxd:
on a shared machine other work delays answers but does not add to their CPU time. With
--before-src (the `src` folder of another revision, e.g. `git archive main src | tar -x -C /tmp/main`)
every step is measured twice, by the API of that revision and then by this one, on the same data
at the same moment, and the ratios are given for both.

    .venv/bin/python -m scripts.benchmarks.compaction --json docs/bench/bench_compaction.json
    .venv/bin/python -m scripts.benchmarks.compaction --before-src /tmp/main/src --json bench.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from logpulse.storage.influxd import LocalInfluxd

from .support import LEVELS, load_average, load_rollups, process_cpu_s, rollup_batches, running_api, wrk_urls


def _shifted(batches: Iterator[list[str]], offset_ns: int) -> Iterator[list[str]]:
    """The points of `batches` under another identity: their times moved by `offset_ns` inside the window."""
    for lines in batches:
        out = []
        for line in lines:
            head, _, t = line.rpartition(" ")
            out.append(f"{head} {int(t) + offset_ns}")
        yield out


def _wait_quiet(pid: int | None, limit_s: float = 180.0) -> float:
    """Wait until influxd uses less than 10 % of a core over 5 s (its own compactions after a bulk write
    or many DELETEs run for minutes and would be measured as the answers' cost); the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        cpu = process_cpu_s(pid)
        time.sleep(5)
        if process_cpu_s(pid) - cpu < 0.5:
            break
    return time.perf_counter() - started


def _du_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--late-requests", type=int, default=2_000_000)
    ap.add_argument("--identities", type=int, default=64, help="16 segments x 4 files")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--settle-s", type=float, default=15)
    ap.add_argument("--json", type=Path, default=Path("bench_compaction.json"))
    ap.add_argument("--before-src", type=Path, help="also measure the API of this `src` folder (another revision)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logpulse-bench-compaction-"))
    out: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "load_start": load_average()}
    db = LocalInfluxd.start(work / "influxd")
    try:
        env = {
            **os.environ,
            "LOGPULSE_ENV_FILE": "/nonexistent",
            "INFLUXDB_URL": db.url,
            "INFLUXDB_DATABASE": "bench",
            "STATS_CACHE_S": "0",
            "COMPACTION_LATENESS_S": "1",
            "RECOVERY_DIR": str(work / "recovery"),
        }
        rp_dir = work / "influxd" / "data" / "bench" / "rollups"
        # every identity at an offset past the window's first millisecond, as real (hashed) ones are
        # all but surely: points inside it are left alone (`rollups/compaction.py`)
        base_points = rollup_batches(args.requests, args.customers, args.days, LEVELS, 1)
        out["load_base"] = load_rollups(db.url, "bench", _shifted(base_points, 2_000_000))
        today = dt.datetime.now(dt.UTC).date()
        frm = (today - dt.timedelta(days=args.days - 1)).isoformat()
        stats = [f"/customers/cust_{c}/stats?from={frm}&to={today}" for c in range(1, args.customers + 1)]
        week = (today - dt.timedelta(days=6)).isoformat()
        series = [
            f"/customers/cust_{c}/series?from={week}&to={today}&interval=15m" for c in range(1, args.customers + 1)
        ]

        apis = {"": env}
        if args.before_src:
            apis = {"before": {**env, "PYTHONPATH": str(args.before_src.resolve())}, "": env}

        def timed(base: str, name: str, paths: list[str]) -> dict:
            cpu = process_cpu_s(db.pid)
            r = wrk_urls(base, work, name, paths, 1, args.seconds)
            answered = r["requests_per_s"] * args.seconds
            r["influxd_cpu_ms_per_request"] = (process_cpu_s(db.pid) - cpu) * 1000 / answered if answered else None
            return r

        def measure(name: str) -> None:
            time.sleep(args.settle_s)
            print(f"{name} ...", flush=True)
            out[name] = {"rollups_dir_mb": _du_mb(rp_dir), "waited_for_quiet_influxd_s": _wait_quiet(db.pid)}
            for revision, api_env in apis.items():
                with running_api(api_env) as api:
                    base = str(api.base_url).rstrip("/")
                    out[name] |= {
                        f"{revision}stats_30d": timed(base, "stats", stats),
                        f"{revision}series_7d_15m": timed(base, "series", series),
                        f"{revision}load": load_average(),
                    }
            print(json.dumps(out[name]), flush=True)

        measure("base")
        per = args.late_requests // args.identities
        late = [lvl for lvl in LEVELS if lvl[0] == "rollups_1d"]
        started = time.perf_counter()
        for i in range(args.identities):
            batches = rollup_batches(per, args.customers, args.days, tuple(late), 100 + i)
            load_rollups(db.url, "bench", _shifted(batches, 1_000_000_000 * (i + 1)))
        out["load_late_s"] = time.perf_counter() - started
        measure("late")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "logpulse", "compact"], env=env, capture_output=True, text=True)
        out["compact"] = {
            "seconds": time.perf_counter() - started,
            "output": done.stdout.strip(),
            "rc": done.returncode,
        }
        print(out["compact"], flush=True)
        measure("compacted")
        stored = args.requests + per * args.identities
        out["stored_requests"] = stored
        for revision in apis:
            for step in ("late", "compacted"):
                for figure in ("p50_ms", "api_cpu_ms_per_request", "influxd_cpu_ms_per_request"):
                    now, base = out[step][f"{revision}stats_30d"][figure], out["base"][f"{revision}stats_30d"][figure]
                    # None when either side has no figure (nothing answered, or no CPU tick counted)
                    out[f"{revision}stats_{figure}_ratio_{step}_vs_base"] = now / base if now and base else None
        out["rollups_mb_per_million_requests"] = {
            k: out[k]["rollups_dir_mb"] / (stored / 1e6) for k in ("late", "compacted")
        }
    finally:
        out["load_end"] = load_average()
        db.close()
        shutil.rmtree(work, ignore_errors=True)  # the influxd data of millions of requests
        args.json.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if "_ratio_" in k or k.startswith("rollups_mb")}, indent=2))


if __name__ == "__main__":
    main()
