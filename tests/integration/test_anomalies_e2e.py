"""Injected incidents go through generate -> ingest -> InfluxDB -> GET /customers/{id}/anomalies."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from fixtures import incident_log, running_api, subprocess_env


def t(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_injected_incidents_are_reported(influx_settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    truth = incident_log(log)
    env = subprocess_env(influx_settings)
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with running_api(env) as api:
        reported = {}
        for c in {i["customer"] for i in truth}:
            r = api.get(f"/customers/{c}/anomalies", params={"from": "2024-09-30", "to": "2024-10-01"})
            assert r.status_code == 200, r.text
            body = r.json()["anomalies"]
            assert [a["start"] for a in body] == sorted(a["start"] for a in body)
            reported[c] = body
        for inc in truth:
            hits = [
                a
                for a in reported[inc["customer"]]
                if a["kind"] == inc["kind"] and t(a["start"]) < t(inc["end"]) and t(inc["start"]) < t(a["end"])
            ]
            assert hits, f"missed {inc}; reported {reported[inc['customer']]}"
            assert hits[0]["requests"] > 0 and hits[0]["score"] >= 4
        total_reported = sum(len(v) for v in reported.values())
        assert total_reported <= len(truth) + 1, reported  # no alarm storm around the incidents
        day = api.get(
            f"/customers/{truth[0]['customer']}/stats", params={"from": "2024-09-30", "to": "2024-10-01"}
        ).json()
        assert sum(d["anomalies"] for d in day["days"]) == len(reported[truth[0]["customer"]])
