"""The customer sweep: the same number of lines for 40, 10,000 and 100,000 customers, in one run.

For each --customers count, --lines logpulse-format lines over one day (yesterday, UTC) with skewed
traffic (`workloads.skewed_requests`), then `logpulse ingest` into an empty database of a private
influxd in each setting: default; SCORING_ENABLED=false; rollups only (also STORE_RAW=false):
  - lines/s until everything is durable, and lines per CPU second of the processor
  - the ratio of each count's lines/s to the first count's (the target: >= 0.5 at 10,000 vs 40), and
    the same ratio of lines per CPU second (steadier on a shared machine)
  - peak RSS of the processor (all its processes, sampled from /proc every 0.2 s), and the state per
    customer in KB: (peak RSS at the last count - at the first) / (difference in customers), a lower
    bound ("at least") when that run was stopped
A setting whose RSS passes --cap-mb is killed and reported as stopped (the machine has no swap to
spare), as is one still running after --timeout-s.

    .venv/bin/python -m scripts.benchmarks.customers --lines 1000000 --customers 40,10000,100000 \\
        --json docs/bench/bench_customers.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from logpulse.storage.influxd import LocalInfluxd

from .support import load_average, process_cpu_s
from .workloads import SETTINGS, ingest_capped, private_env, skewed_requests, write_logpulse

NAMES = {
    "default": "default",
    "unscored": "SCORING_ENABLED=false",
    "rollups_only": "rollups only (also STORE_RAW=false)",
}


def sweep(influx: LocalInfluxd, work: Path, args: argparse.Namespace, counts: list[int], settings: list[str]) -> dict:
    """{setting: {customers: run}}: every setting for one count, then the next count (one file each);
    each run also says how much CPU the influxd used while it ran (`influxd_cpu_s`)."""
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    runs: dict[str, dict[int, dict]] = {s: {} for s in settings}
    for customers in counts:
        log = work / f"requests-{args.lines}-{customers}c-{day.date()}.log"
        if not log.exists():
            print(f"writing {args.lines:,} lines, {customers:,} customers ...", flush=True)
            write_logpulse(log, skewed_requests(args.lines, customers, day, 86400, args.skew, seed=customers))
        for setting in settings:
            print(f"ingest {customers:,} customers, {setting} ...", flush=True)
            env = private_env(influx.url, work, f"c{customers}_{setting}_{time.time_ns()}", **SETTINGS[setting])
            influxd_before = process_cpu_s(influx.pid)
            run = ingest_capped(env, [log], args.cap_mb, args.timeout_s)
            run["influxd_cpu_s"] = process_cpu_s(influx.pid) - influxd_before
            runs[setting][customers] = run
            rate = run.get("stopped") or f"{run['lines_per_s']:,.0f} lines/s"
            print(
                f"  {rate}, {run['seconds']:.1f} s, processor CPU {run['cpu_s']:.1f} s, influxd CPU "
                f"{run['influxd_cpu_s']:.1f} s, peak RSS {run['peak_rss_mb']:,.0f} MB",
                flush=True,
            )
    return runs


def summarise(runs: dict[str, dict[int, dict]], counts: list[int]) -> dict:
    """Per setting: lines/s ratio of every count to the first, and state per customer at the last."""
    first, last = counts[0], counts[-1]
    out: dict[str, dict] = {}
    for setting, by_count in runs.items():
        base = by_count[first]
        done = {n: r for n, r in by_count.items() if r["lines_per_s"] and base["lines_per_s"] and n != first}
        ratios = {str(n): r["lines_per_s"] / base["lines_per_s"] for n, r in done.items()}
        cpu_ratios = {str(n): r["lines_per_cpu_s"] / base["lines_per_cpu_s"] for n, r in done.items()}
        end = by_count[last]
        per_customer = (end["peak_rss_mb"] - base["peak_rss_mb"]) * 1024 / (last - first) if last != first else None
        out[setting] = {
            "ratio_to_first": ratios,
            "cpu_ratio_to_first": cpu_ratios,
            f"state_per_customer_kb_at_{last}": per_customer,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--customers", default="40,10000,100000", help="comma-separated counts, smallest first")
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, of " + ", ".join(SETTINGS))
    ap.add_argument("--skew", type=float, default=1.0, help="sigma of the lognormal customer weights")
    ap.add_argument("--cap-mb", type=float, default=8192, help="stop a run whose processes exceed this RSS")
    ap.add_argument("--timeout-s", type=float, default=3600, help="stop a run still going after this long")
    ap.add_argument("--work-dir", type=Path, default=None, help="keep the generated logs here between runs")
    ap.add_argument("--json", type=Path, default=Path("bench_customers.json"))
    args = ap.parse_args()

    counts = [int(c) for c in args.customers.split(",")]
    settings = args.settings.split(",")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="logpulse-customers-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    results["load_average_before"] = load_average()
    with LocalInfluxd.start(work / "influxdb") as influx:
        runs = sweep(influx, work, args, counts, settings)
    results["load_average_after"] = load_average()
    results["runs"] = {s: {str(n): r for n, r in by_count.items()} for s, by_count in runs.items()}
    results["summary"] = summarise(runs, counts)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print_table(results, counts)
    print(f"\nwritten {args.json}")


def print_table(r: dict, counts: list[int]) -> None:
    print(
        f"\n{int(r['args']['lines']):,} lines over one day; load average "
        f"{r['load_average_before']} -> {r['load_average_after']}"
    )
    head = " | ".join(f"{n:,} customers" for n in counts)
    ratios = " | ".join(f"{n:,} vs {counts[0]:,} (per CPU s)" for n in counts[1:])
    last = counts[-1]
    growth = " → ".join(f"{n:,}" for n in counts)
    print(f"| setting | {head} | {ratios} | peak RSS ({growth}) | KB per customer at {last:,} |")
    print("| --- " * (2 * len(counts) + 2) + "|")
    for setting, by_count in r["runs"].items():
        rates = " | ".join(
            run["stopped"]
            if run.get("stopped")
            else f"{run['lines_per_s']:,.0f} lines/s ({run['lines_per_cpu_s']:,.0f} per CPU s)"
            for run in (by_count[str(n)] for n in counts)
        )
        s = r["summary"][setting]
        ratio = " | ".join(
            f"{s['ratio_to_first'][str(n)]:.2f} ({s['cpu_ratio_to_first'][str(n)]:.2f})"
            if str(n) in s["ratio_to_first"]
            else "-"
            for n in counts[1:]
        )
        rss = " → ".join(f"{by_count[str(n)]['peak_rss_mb']:,.0f} MB" for n in counts)
        kb = s[f"state_per_customer_kb_at_{last}"]
        state = "-" if kb is None else f"at least {kb:,.1f}" if by_count[str(last)].get("stopped") else f"{kb:,.1f}"
        print(f"| {NAMES[setting]} | {rates} | {ratio} | {rss} | {state} |")


if __name__ == "__main__":
    main()
