"""Anomaly detection and alerting quality: traffic with known incidents, ingested,
incidents read back from the API.

Two families of scenarios (`scenarios.py`):
* the generator's (`logpulse generate --incidents N`: latency x3-4 / errors +30-50 points, 2-10 min),
  today's benchmark, which must stay at recall 1.0 / precision 1.0;
* synthetic ones written here (per-customer Poisson traffic with optional ±60% day/night swings and
  heavy-tailed latency): traffic drops to 0 and to 10%, surges x5, latency x1.5, errors +5 points
  (10-20 min, on customers with >= 2 req/s), a quiet diurnal day, and lasting x1.7 latency steps.

Each log is loaded with `logpulse ingest` into a private influxd and the incidents are read from
GET /anomalies. An injected incident is *found* when a reported incident of the same customer and kind
overlaps it; *split* when more than one does; a reported incident overlapping none is a false alarm
(`slo_burn` incidents are a policy, not anomalies: counted apart). *Alert delay* = stream time from
the injected start to the `detected` time of the first reported incident that overlaps it.

    .venv/bin/python -m scripts.benchmarks.anomaly --json docs/bench/bench_anomaly.json [--only NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from logpulse.storage.influxd import LocalInfluxd

from .scenarios import NOW, SCENARIOS, Scenario, Synthetic, ts, write_log
from .support import running_api


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["customer"] == b["customer"]
        and a["kind"] == b["kind"]
        and ts(a["start"]) < ts(b["end"])
        and ts(b["start"]) < ts(a["end"])
    )


def digest(incidents: list[dict]) -> str:
    """A fingerprint of every reported incident (slo_burn included): two revisions that print the same
    digest for a scenario decided alike there, end to end through the dataflow and the API."""
    keys = ("customer", "kind", "start", "end", "detected", "status", "ended", "score", "requests", "summary")
    rows = sorted(json.dumps([a.get(k) for k in keys]) for a in incidents)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]


def _anomalies(api: httpx.Client, first: str, attempts: int = 6) -> list[dict]:
    """GET /anomalies; a 503 (InfluxDB too slow on a loaded machine) is retried after its Retry-After,
    as the API asks of its clients."""
    for _ in range(attempts - 1):
        r = api.get("/anomalies", params={"from": first, "to": NOW.date().isoformat(), "limit": 5000})
        if r.status_code != 503:
            break
        time.sleep(float(r.headers.get("Retry-After", "1")))
    r.raise_for_status()
    return r.json()["anomalies"]  # type: ignore[no-any-return]


def run(sc: Scenario | Synthetic, influx: LocalInfluxd, work: Path) -> dict:
    log = work / f"{sc.seed}.log"
    for stale in (log, Path(f"{log}.incidents.json")):
        stale.unlink(missing_ok=True)
    lines, truth = write_log(sc, log)
    env = {
        **os.environ,
        "LOGPULSE_ENV_FILE": "/nonexistent",
        "INFLUXDB_URL": influx.url,
        "INFLUXDB_DATABASE": f"anomaly_{sc.seed}",
        "DEAD_LETTER_PATH": str(work / "rejected.jsonl"),
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, check=True, capture_output=True)
    first = (NOW - dt.timedelta(days=sc.days + 1)).date().isoformat()
    with running_api(env) as api:
        everything = [{**a, "customer": a["customer_id"]} for a in _anomalies(api, first)]
    reported = [a for a in everything if a["kind"] != "slo_burn"]
    hits = [[r for r in reported if overlaps(t, r)] for t in truth]
    found = sum(1 for h in hits if h)
    split = sum(1 for h in hits if len(h) > 1)
    delays = [
        ts(min(h, key=lambda a: ts(a["start"]))["detected"]) - ts(t["start"])
        for t, h in zip(truth, hits, strict=True)
        if h
    ]
    false = [r for r in reported if not any(overlaps(t, r) for t in truth)]
    result = {
        "scenario": sc.name,
        "lines": lines,
        "injected": len(truth),
        "found": found,
        "split": split,
        "reported": len(reported),
        "false_alarms": len(false),
        "slo_burn": len(everything) - len(reported),
        "recall": found / len(truth) if truth else None,
        "precision": (len(reported) - len(false)) / len(reported) if reported else None,
        "false_per_customer_day": len(false) / (sc.customers * sc.days),
        "delays_s": delays,
        "delay_p50_s": float(np.median(delays)) if delays else None,
        "false_examples": false[:5],
        "digest": digest(everything),
    }
    if isinstance(sc, Synthetic) and sc.effect == "step1.7":
        ok = 0
        for t, h in zip(truth, hits, strict=True):
            new_normal = [
                a for a in h if a["status"] == "resolved" and "new normal" in (a["summary"] or "") and a["ended"]
            ]
            if len(h) == 1 and new_normal and ts(new_normal[0]["ended"]) - ts(t["start"]) <= 3600:
                ok += 1
        result["steps_one_incident_new_normal_within_1h"] = f"{ok}/{len(truth)}"
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=Path("bench_anomaly.json"))
    ap.add_argument("--only", default="", help="Run only scenarios whose name contains this")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logpulse-anomaly-"))
    results = []
    try:
        with LocalInfluxd.start(work / "influxdb") as influx:
            for sc in SCENARIOS:
                if args.only and args.only not in sc.name:
                    continue
                print(f"{sc.name} ...", flush=True)
                results.append(run(sc, influx, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.json.write_text(json.dumps(results, indent=2))
    fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    print(
        "| scenario | lines | injected | found | split | reported | false alarms | recall | precision "
        "| false / customer / day | alert delay p50 | digest |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        delay = "-" if r["delay_p50_s"] is None else f"{r['delay_p50_s'] / 60:.1f} min"
        print(
            f"| {r['scenario']} | {r['lines']:,} | {r['injected']} | {r['found']} | {r['split']} | {r['reported']} "
            f"| {r['false_alarms']} | {fmt(r['recall'])} | {fmt(r['precision'])} "
            f"| {r['false_per_customer_day']:.3f} | {delay} | {r['digest']} |"
        )
    delays = [d for r in results for d in r["delays_s"]]
    if delays:
        print(
            f"\nalert delay over all found incidents: p50 {np.median(delays) / 60:.1f} min, "
            f"p90 {np.percentile(delays, 90) / 60:.1f} min (stream time)"
        )
    for r in results:
        if "steps_one_incident_new_normal_within_1h" in r:
            print(
                f"{r['scenario']}: one incident, resolved as new normal within 1 h: "
                f"{r['steps_one_incident_new_normal_within_1h']}"
            )
        if r["slo_burn"]:
            print(f"{r['scenario']}: {r['slo_burn']} slo_burn incident(s) (policy alerts, not counted above)")


if __name__ == "__main__":
    main()
