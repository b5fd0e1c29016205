"""What the SLO fields cost the API: the same answers with and without SLO_TARGETS.

Loads rollups (the API benchmark's synthetic loader, `support.rollup_batches`: 1% of requests 5xx) of
--requests requests over --customers customers and --days days into a private influxd, starts two
`logpulse serve` side by side on that data, one with `SLO_TARGETS=default=99.5` and one with
`SLO_TARGETS=` (empty: no budget is read), STATS_CACHE_S=0, and alternates short 1-client wrk runs against both:
  - 30-day stats of one customer (rotating): one more concurrent read (counts of the range plus the
    SLO window before it, no histograms)
  - GET /stats (fleet, a page of 100 customers): one more concurrent SUM over the SLO window
and prints the median p50 of each and their ratio (measured in the same run, so both see the same
shared machine).

    flock /work/bench.lock .venv/bin/python -m scripts.benchmarks.slo
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from logpulse.storage.influxd import LocalInfluxd

from .support import LEVELS, load_rollups, rollup_batches, running_api, wrk_urls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--days", type=int, default=45, help="data days: the SLO window reaches before the range")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=4, help="wrk duration per round and variant")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="logpulse-bench-slo-"))
    today = dt.datetime.now(dt.UTC).date()
    frm = (today - dt.timedelta(days=29)).isoformat()
    paths = {
        "stats": [f"/customers/cust_{c}/stats?from={frm}&to={today}" for c in range(1, args.customers + 1)],
        "fleet": [f"/stats?from={frm}&to={today}&limit=100"],
    }
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    with LocalInfluxd.start(work / "influxdb") as influx:
        print(f"loading rollups of {args.requests:,} requests, {args.customers} customers, {args.days} days ...")
        results["load"] = load_rollups(
            influx.url, "bench_slo", rollup_batches(args.requests, args.customers, args.days, LEVELS, seed=7)
        )
        time.sleep(5)
        env = {
            **os.environ,
            "INFLUXDB_URL": influx.url,
            "INFLUXDB_DATABASE": "bench_slo",
            "API_KEY": "",
            "STATS_CACHE_S": "0",
        }
        p50: dict[str, dict[str, list[float]]] = {k: {"slo": [], "none": []} for k in paths}
        with (
            running_api({**env, "SLO_TARGETS": "default=99.5"}) as slo,
            running_api({**env, "SLO_TARGETS": ""}) as none,
        ):
            probe = slo.get(paths["stats"][0]).json()["summary"]
            assert probe["error_budget_remaining"] is not None, probe
            assert none.get(paths["stats"][0]).json()["summary"]["error_budget_remaining"] is None
            for i in range(args.rounds):
                for key in paths:
                    for name, api in (("slo", slo), ("none", none)):
                        base = str(api.base_url).rstrip("/")
                        r50 = wrk_urls(base, work, f"{key}_{name}", paths[key], 1, args.seconds)["p50_ms"]
                        p50[key][name].append(r50)
                print(f"  round {i + 1}/{args.rounds} done", flush=True)
    results["p50_ms"] = p50
    for key, v in p50.items():
        med = {k: float(np.median(x)) for k, x in v.items()}
        results[key] = {"median_p50_ms": med, "ratio_slo_to_none": med["slo"] / med["none"]}
        print(
            f"{key:6s} p50 with SLO {med['slo']:.1f} ms, without {med['none']:.1f} ms: "
            f"x{med['slo'] / med['none']:.2f} (median of {args.rounds} alternating rounds)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
