"""Poison lines never stop or bend the pipeline: through a tailed log, the spool and POST /ingest,
a canary line after them is stored within seconds, and the processor lives on across a restart; a
line from the future does not tick every customer into a `traffic_drop`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fixtures import incident_log, running_api, subprocess_env
from logpulse.config import Settings


def poison(now: dt.datetime) -> list[str]:
    day, clock = now.strftime("%Y-%m-%d"), now.strftime("%H:%M:%S")
    return [
        f"{day} {clock} evil /p 2٠٠ 0.100",  # Arabic-Indic digits
        f"{day} {clock} evil /p 2²² 0.100",  # superscripts
        f"{day} {clock} evil /p 200 nan",
        f"{day} {clock} evil /p 200 inf",
        f"{day} {clock} evil /p 200 -1",
        f"{day} {clock} evil /p 200 999999999",  # far above MAX_DURATION_S
        f"1000-01-01 {clock} evil /p 200 0.100",
        f"2100-01-01 {clock} evil /p 200 0.100",
        f"9999-12-31 {clock} evil /p 200 0.100",
        f"{day} {clock} evil /p\x1b[2J 200 0.100",
        f"{day} {clock} evil\x00 /p 200 0.100",
    ]


def stored(settings: Settings, customer: str) -> int:
    r = httpx.post(
        f"{settings.influxdb_url}/query",
        data={
            "db": settings.influxdb_database,
            "q": f'SELECT COUNT("status") FROM "requests" WHERE "customer_id" = \'{customer}\'',
        },
        timeout=10,
    )
    series = r.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def wait_stored(settings: Settings, customer: str, proc: subprocess.Popen[bytes], out: Path, within_s: float) -> float:
    started = time.monotonic()
    while stored(settings, customer) == 0:
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() - started < within_s, f"{customer} not stored: {out.read_text()[-3000:]}"
        time.sleep(0.2)
    return time.monotonic() - started


def test_poison_then_canary_through_tailing_spool_and_post(influx_settings: Settings, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    log, spool = Path(influx_settings.log_path), Path(influx_settings.ingest_spool_path)
    bad = poison(now)
    log.write_text("".join(f"{line}\n" for line in bad))
    spool.write_text("".join(f"{line}\n" for line in bad))  # as an older API version spooled them
    env = subprocess_env(influx_settings, SNAPSHOT_INTERVAL_S="0.5", POLL_INTERVAL_S="0.05", SLO_TARGETS="")
    out = tmp_path / "processor.out"
    with open(out, "ab") as sink, running_api(env) as api:
        proc = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=sink, stderr=sink)
        try:
            answer = api.post(
                "/ingest", content="".join(f"{line}\n" for line in bad), headers={"Content-Type": "text/plain"}
            )
            assert answer.status_code == 202 and answer.json()["accepted"] == 0, answer.text
            with log.open("a") as f:
                f.write(f"{now:%Y-%m-%d %H:%M:%S} canary_tail /ok 200 0.050\n")
            took = wait_stored(influx_settings, "canary_tail", proc, out, within_s=60)
            time.sleep(1.5)  # snapshots pass over the poison
            assert proc.poll() is None
            proc.terminate()
            assert proc.wait(60) == 0, out.read_text()[-3000:]
            proc = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=sink, stderr=sink)
            answer = api.post(
                "/ingest",
                content=f"{now:%Y-%m-%d %H:%M:%S} canary_post /ok 200 0.050\n",
                headers={"Content-Type": "text/plain"},
            )
            assert answer.status_code == 202 and answer.json()["accepted"] == 1, answer.text
            wait_stored(influx_settings, "canary_post", proc, out, within_s=60)
            time.sleep(2.0)
            assert proc.poll() is None, out.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(60)
    assert stored(influx_settings, "evil") == 0
    entries = [json.loads(x) for x in Path(influx_settings.dead_letter_path).read_text().splitlines()]
    checks = {(Path(e["file"]).name, e["check"]) for e in entries}
    for name in (log.name, spool.name):
        assert {c for f, c in checks if f == name} >= {"status", "duration", "time", "path"}, checks
    assert took < 60


def test_a_line_from_the_future_does_not_tick_everyone_into_a_drop(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    truth = incident_log(log)
    future = tmp_path / "future.log"
    now = dt.datetime.now(dt.UTC)
    future.write_text(  # refused (2100), and accepted but two years ahead of the other log (now)
        f"2100-01-01 00:00:00 cust_1 /p 200 0.100\n{now:%Y-%m-%d %H:%M:%S} intruder /p 200 0.100\n"
    )
    env = subprocess_env(influx_settings, SLO_TARGETS="")
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(future), str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with running_api(env) as api:
        for inc in truth:
            r = api.get(f"/customers/{inc['customer']}/anomalies", params={"from": "2024-09-30", "to": "2024-10-01"})
            found = r.json()["anomalies"]
            assert any(a["kind"] == inc["kind"] for a in found), (inc, found)
            assert not [a for a in found if a["kind"] == "traffic_drop"], found
