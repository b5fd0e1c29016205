"""The ordinary nginx fleet: `logpulse ingest` beside GoAccess on the same access log, in one run.

The log: nginx `combined` + a quoted customer header + `$request_time` (`workloads.NGINX_FLEET_FORMAT`),
--lines requests over the --days whole UTC days before today, --customers customers with skewed
traffic. Then:
  1. GoAccess   /usr/bin/goaccess with the matching --log-format, JSON report: lines/s (wall, until the
                report is written; GoAccess keeps everything in memory and writes nothing durable)
  2. logpulse   `logpulse ingest` with LOG_FORMAT=nginx into an empty database of a private influxd,
                in each setting: default; STORE_RAW=false; SCORING_ENABLED=false; both off:
                lines/s until everything is durable, its ratio to GoAccess, peak RSS; also lines per
                CPU second of each tool's own processes (influxd excluded), steadier on a shared machine
  3. agreement  GoAccess's per-day hits (visitors.data[].hits.count) against logpulse's per-day
                totals (sum of `count` of the daily rollups of every customer), and GoAccess's time
                served (cumts, µs) against logpulse's sum of durations (`sum`, s), for every setting

    .venv/bin/python -m scripts.benchmarks.fleet --lines 600000 --json docs/bench/bench_fleet.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd

from .support import load_average
from .workloads import (
    GOACCESS_FLEET_FORMAT,
    NGINX_FLEET_FORMAT,
    SETTINGS,
    ingest_capped,
    private_env,
    skewed_requests,
    write_nginx_fleet,
)

FLEET_SETTINGS = {
    "default": SETTINGS["default"],
    "raw_off": {"STORE_RAW": "false"},
    "unscored": SETTINGS["unscored"],
    "both_off": SETTINGS["rollups_only"],
}
NAMES = {
    "default": "`logpulse ingest`, default settings",
    "raw_off": "STORE_RAW=false",
    "unscored": "SCORING_ENABLED=false",
    "both_off": "both off",
}
TIME_SERVED_TOLERANCE_US = 1.0
"""Allowed difference per request between the two sums of durations: GoAccess truncates each `%T`
(seconds.milliseconds) to whole microseconds, so 0.123 can count as 122,999 µs."""


def goaccess(log: Path, work: Path, lines: int) -> dict:
    """GoAccess over the log with the matching format: lines/s, and its per-day hits and time served."""
    report = work / "goaccess-report.json"
    report.unlink(missing_ok=True)
    cmd = [
        shutil.which("goaccess") or "/usr/bin/goaccess",
        str(log),
        "--no-global-config",
        f"--log-format={GOACCESS_FLEET_FORMAT}",
        "--date-format=%d/%b/%Y",
        "--time-format=%T",
        "-o",
        str(report),
    ]
    before = os.times()
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    r = json.loads(report.read_text())
    days = {
        f"{d['data'][:4]}-{d['data'][4:6]}-{d['data'][6:]}": {"hits": d["hits"]["count"], "time_served_us": d["cumts"]}
        for d in r["visitors"]["data"]
    }
    return {
        "version": re.search(
            r"\d+(\.\d+)+", subprocess.run([cmd[0], "--version"], capture_output=True, text=True).stdout
        )[0],
        "lines": lines,
        "valid_requests": r["general"]["valid_requests"],
        "seconds": seconds,
        "cpu_s": cpu,
        "lines_per_s": lines / seconds,
        "lines_per_cpu_s": lines / cpu if cpu else None,
        "days": dict(sorted(days.items())),
    }


def logpulse_days(url: str, db: str, first: dt.date, last: dt.date) -> dict[str, dict]:
    """Per UTC day: requests and sum of durations (µs) from the daily rollups of every customer."""
    writer = InfluxWriter(Connection(url=url, database=db))
    try:
        results = writer.query(
            'SELECT sum("count"), sum("sum") FROM "rollups"."rollups_1d" WHERE "customer_id" != \'*\' '
            f"AND time >= '{first}T00:00:00Z' AND time < '{last + dt.timedelta(days=1)}T00:00:00Z' GROUP BY time(1d)"
        )
    finally:
        writer.close()
    days = {}
    for series in results[0].get("series", []):
        for t_ns, hits, seconds in series["values"]:
            if hits:
                day = dt.datetime.fromtimestamp(t_ns / 1e9, dt.UTC).date().isoformat()
                days[day] = {"hits": int(hits), "time_served_us": seconds * 1e6}
    return days


def agreement(goaccess_days: dict[str, dict], ours: dict[str, dict]) -> dict:
    hits_equal = goaccess_days.keys() == ours.keys() and all(
        goaccess_days[d]["hits"] == ours[d]["hits"] for d in goaccess_days
    )
    diffs = {
        d: abs(ga["time_served_us"] - ours.get(d, {"time_served_us": 0})["time_served_us"])
        for d, ga in goaccess_days.items()
    }
    return {
        "hits_per_day_equal": hits_equal,
        "time_served_max_diff_us": max(diffs.values()),
        "time_served_agree": all(
            diffs[d] <= TIME_SERVED_TOLERANCE_US * goaccess_days[d]["hits"] for d in goaccess_days
        ),
        "logpulse_days": ours,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=600_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--customers", type=int, default=40)
    ap.add_argument("--skew", type=float, default=1.0, help="sigma of the lognormal customer weights")
    ap.add_argument(
        "--settings", default=",".join(FLEET_SETTINGS), help="comma-separated, of " + ", ".join(FLEET_SETTINGS)
    )
    ap.add_argument("--cap-mb", type=float, default=8192, help="stop a setting whose processes exceed this RSS")
    ap.add_argument("--work-dir", type=Path, default=None, help="keep the generated log here between runs")
    ap.add_argument("--json", type=Path, default=Path("bench_fleet.json"))
    args = ap.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="logpulse-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - dt.timedelta(days=args.days)  # whole UTC days up to yesterday: no line is in the future
    log = work / f"access-{args.lines}-{args.customers}-{args.days}d-{start.date()}.log"
    if not log.exists():
        print(f"writing {args.lines:,} nginx lines, {args.customers} customers, {args.days} days ...", flush=True)
        write_nginx_fleet(
            log, skewed_requests(args.lines, args.customers, start, args.days * 86400, args.skew, seed=30)
        )
    results: dict = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
        "load_average_before": load_average(),
        "log_bytes": log.stat().st_size,
    }
    print("GoAccess ...", flush=True)
    results["goaccess"] = ga = goaccess(log, work, args.lines)
    first, last = start.date(), (start + dt.timedelta(days=args.days - 1)).date()
    with LocalInfluxd.start(work / "influxdb") as influx:
        for name in args.settings.split(","):
            db = f"fleet_{name}_{time.time_ns()}"
            env = private_env(
                influx.url,
                work,
                db,
                LOG_FORMAT="nginx",
                NGINX_LOG_FORMAT=NGINX_FLEET_FORMAT,
                CUSTOMER_FROM="$http_x_customer_id",
                **FLEET_SETTINGS[name],
            )
            print(f"logpulse ingest ({name}) ...", flush=True)
            run = ingest_capped(env, [log], args.cap_mb)
            if run["lines_per_s"]:
                run["ratio_to_goaccess"] = run["lines_per_s"] / ga["lines_per_s"]
                run["cpu_ratio_to_goaccess"] = run["lines_per_cpu_s"] / ga["lines_per_cpu_s"]
                run["agreement"] = agreement(ga["days"], logpulse_days(influx.url, db, first, last))
            results[name] = run
    results["load_average_after"] = load_average()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten {args.json}")


def print_table(r: dict) -> None:
    ga = r["goaccess"]
    print(f"\nnginx fleet: {ga['lines']:,} lines, load average {r['load_average_before']} -> {r['load_average_after']}")
    print(
        "| what | lines/s | ratio to GoAccess | lines per CPU s (ratio) | peak RSS | per-day hits agree "
        "| time served agrees (largest daily difference) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| GoAccess {ga['version']} | {ga['lines_per_s']:,.0f} | 1.00 | {ga['lines_per_cpu_s']:,.0f} (1.00) | | | |")
    for key, name in NAMES.items():
        if key not in r:
            continue
        run = r[key]
        if run.get("stopped"):
            print(f"| {name} | stopped: {run['stopped']} | | | | | |")
            continue
        a = run["agreement"]
        print(
            f"| {name} | {run['lines_per_s']:,.0f} | {run['ratio_to_goaccess']:.2f} "
            f"| {run['lines_per_cpu_s']:,.0f} ({run['cpu_ratio_to_goaccess']:.2f}) | {run['peak_rss_mb']:,.0f} MB "
            f"| {'yes' if a['hits_per_day_equal'] else 'NO'} "
            f"| {'yes' if a['time_served_agree'] else 'NO'} ({a['time_served_max_diff_us']:.2f} µs) |"
        )


if __name__ == "__main__":
    main()
