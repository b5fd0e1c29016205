#!/usr/bin/env python3
"""Anomaly detection quality (issue 4): generate traffic with known incidents, ingest, read the API.

For each scenario (seed, customers, traffic, incident size): `logpulse generate --incidents N`
writes the log and its ground truth, `logpulse ingest` loads it into a private influxd, and the
incidents are read back from GET /customers/{id}/anomalies. An injected incident is found when a
reported incident of the same customer and kind overlaps it; a reported incident overlapping none
is a false alarm. Also measured: false incidents per customer per day on incident-free traffic and
on the classic generator's shuffled traffic.

    .venv/bin/python scripts/bench_anomaly.py --json bench_anomaly.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from fixtures import running_api  # noqa: E402
from logpulse.generator import GeneratorOptions, generate  # noqa: E402
from logpulse.storage.influxd import LocalInfluxd  # noqa: E402

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@dataclass
class Scenario:
    name: str
    seed: int
    customers: int
    rate: float
    days: float
    incidents: int
    latency_factor: float = 3.0
    error_increase: float = 0.3
    mode: str = "live"


SCENARIOS = [
    Scenario("20 customers, 60 req/s, x3 / +30 pts", 1, 20, 60, 0.25, 12),
    Scenario("10 customers, 30 req/s, x3 / +30 pts", 2, 10, 30, 0.25, 8),
    Scenario("40 customers, 150 req/s, x4 / +50 pts", 3, 40, 150, 0.25, 16, 4.0, 0.5),
    Scenario("5 customers, 10 req/s, x3 / +30 pts", 4, 5, 10, 0.5, 6),
    Scenario("quiet: 20 customers, 40 req/s, 1 day", 5, 20, 40, 1.0, 0),
    Scenario("classic shuffled, 50 customers, 30 days", 6, 50, 0, 30.0, 0, mode="classic"),
]


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["customer"] == b["customer"]
        and a["kind"] == b["kind"]
        and ts(a["start"]) < ts(b["end"])
        and ts(b["start"]) < ts(a["end"])
    )


def run(sc: Scenario, influx: LocalInfluxd, work: Path) -> dict:
    log = work / f"{sc.seed}.log"
    for stale in (log, Path(f"{log}.incidents.json")):
        stale.unlink(missing_ok=True)
    if sc.mode == "classic":
        lines = generate(
            GeneratorOptions(
                out=log, count=300_000, mode="classic", customers=sc.customers, days=sc.days, seed=sc.seed, now=NOW
            )
        )
    else:
        lines = generate(
            GeneratorOptions(
                out=log,
                rate=sc.rate,
                customers=sc.customers,
                days=sc.days,
                seed=sc.seed,
                incidents=sc.incidents,
                now=NOW,
                backfill_max_lines=None,
                live_seconds=0,
                latency_factor=sc.latency_factor,
                error_rate_increase=sc.error_increase,
            )
        )
    truth = json.loads(Path(f"{log}.incidents.json").read_text()) if sc.incidents else []
    env = {
        **os.environ,
        "LOGPULSE_ENV_FILE": "/nonexistent",
        "INFLUXDB_URL": influx.url,
        "INFLUXDB_DATABASE": f"anomaly_{sc.seed}",
        "DEAD_LETTER_PATH": str(work / "rejected.jsonl"),
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, check=True, capture_output=True)
    reported: list[dict] = []
    first = (NOW - dt.timedelta(days=sc.days + 1)).date().isoformat()
    with running_api(env) as api:
        for i in range(1, sc.customers + 1):
            r = api.get(f"/customers/cust_{i}/anomalies", params={"from": first, "to": NOW.date().isoformat()})
            if r.status_code == 200:
                reported += [{**a, "customer": f"cust_{i}"} for a in r.json()["anomalies"]]
    found = sum(any(overlaps(t, r) for r in reported) for t in truth)
    false = [r for r in reported if not any(overlaps(t, r) for t in truth)]
    return {
        "scenario": sc.name,
        "lines": lines,
        "injected": len(truth),
        "found": found,
        "reported": len(reported),
        "false_alarms": len(false),
        "recall": found / len(truth) if truth else None,
        "precision": (len(reported) - len(false)) / len(reported) if reported else None,
        "false_per_customer_day": len(false) / (sc.customers * sc.days),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=Path("bench_anomaly.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logpulse-anomaly-"))
    results = []
    with LocalInfluxd.start(work / "influxdb") as influx:
        for sc in SCENARIOS:
            print(f"{sc.name} ...", flush=True)
            results.append(run(sc, influx, work))
    args.json.write_text(json.dumps(results, indent=2))
    fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    print(
        "| scenario | lines | injected | found | reported | false alarms | recall | precision "
        "| false / customer / day |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['scenario']} | {r['lines']:,} | {r['injected']} | {r['found']} | {r['reported']} "
            f"| {r['false_alarms']} "
            f"| {fmt(r['recall'])} | {fmt(r['precision'])} | {r['false_per_customer_day']:.3f} |"
        )


if __name__ == "__main__":
    main()
