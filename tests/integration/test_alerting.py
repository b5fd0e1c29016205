"""Alert delivery end to end: real logpulse processes, a real influxd, a real Alertmanager, a real
HTTP webhook receiver; faults are real (kill -9 of the processor, a receiver that is down)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from fixtures import ALERTMANAGER, WebhookReceiver, free_port, requires, running_alertmanager, subprocess_env
from logpulse.config import Settings
from logpulse.generator import format_lines

T0 = dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC).timestamp()

requires_alertmanager = requires(ALERTMANAGER)


def lines(minutes: float, *, start_min: float = 0, slow: tuple[float, float] | None = None, seed: int = 0) -> str:
    """cust_1 at 4 req/s (latency x4 in `slow` minutes), cust_2 at 2 req/s: log text."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * 6)
    t = np.sort(rng.uniform(T0 + start_min * 60, T0 + (start_min + minutes) * 60, n))
    cust = np.where(rng.random(n) < 4 / 6, "cust_1", "cust_2")
    d = rng.lognormal(np.log(0.2), 0.3, n)
    if slow:
        m = (t - T0) / 60
        d[(cust == "cust_1") & (m >= slow[0]) & (m < slow[1])] *= 4
    status = np.where(rng.random(n) < 0.01, "500", "200")
    return "".join(format_lines(t, cust, np.array(["/a"] * n), status, d))


def ingest(env: dict[str, str], log: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, capture_output=True, text=True, timeout=timeout
    )


def active_alerts(url: str) -> list[dict]:
    r = httpx.get(f"{url}/api/v2/alerts", timeout=10)
    r.raise_for_status()
    return [a for a in r.json() if a["labels"].get("alertname", "").startswith("logpulse_")]


def stored_incidents(settings: Settings) -> list[dict]:
    q = 'SELECT "id", "status", "end", "ended", "summary" FROM "anomalies"'
    r = httpx.get(f"{settings.influxdb_url}/query", params={"db": settings.influxdb_database, "q": q}, timeout=30)
    series = r.json()["results"][0].get("series") or []
    return [dict(zip(s["columns"], v, strict=True)) for s in series for v in s["values"]]


@requires_alertmanager
def test_alertmanager_gets_labelled_alerts_that_resolve(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text(lines(50, slow=(40, 60)))  # the slowdown is still going on at the end of the log
    with running_alertmanager(tmp_path / "am") as am:
        env = subprocess_env(influx_settings, ALERTMANAGER_URL=am, SLO_TARGETS="")
        done = ingest(env, log)
        assert done.returncode == 0, done.stderr[-2000:]
        (alert,) = active_alerts(am)  # ingest returned only once Alertmanager accepted it
        assert alert["labels"]["alertname"] == "logpulse_latency"
        assert alert["labels"]["customer_id"] == "cust_1" and alert["labels"]["severity"] == "warning"
        assert "latency" in alert["annotations"]["summary"] and "usual" in alert["annotations"]["summary"]
        assert alert["startsAt"].startswith("2026-11-24T08:40")
        (stored,) = stored_incidents(influx_settings)
        assert alert["labels"]["incident_id"] == stored["id"] and stored["status"] == "open"

        with log.open("a") as f:  # the slowdown ends at minute 60; 15 quiet minutes follow
            f.write(lines(25, start_min=50, slow=(40, 60), seed=1))
        done = ingest(env, log)  # a replay of the whole file: same incident id, now resolved
        assert done.returncode == 0, done.stderr[-2000:]
        assert active_alerts(am) == []  # resolved by an endsAt in the past (firing ones live 5 min)
        (stored,) = stored_incidents(influx_settings)
        assert stored["status"] == "resolved" and stored["ended"] is not None


@requires_alertmanager
def test_alert_survives_kill_9_between_incident_and_delivery(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text(lines(50, slow=(40, 60)))
    port = free_port()  # Alertmanager will listen here, but is down at first
    env = subprocess_env(
        influx_settings,
        LOG_PATH=str(log),
        ALERTMANAGER_URL=f"http://127.0.0.1:{port}",
        SLO_TARGETS="",
        SNAPSHOT_INTERVAL_S="0.5",
        POLL_INTERVAL_S="0.05",
    )
    out = open(tmp_path / "processor.out", "ab")  # noqa: SIM115 - shared by both runs
    proc = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not stored_incidents(influx_settings):  # the incident is found and stored ...
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "processor.out").read_text()
            time.sleep(0.2)
        time.sleep(2.0)  # ... its alert fails to deliver, and snapshots pass
        assert b"alert delivery failed" in (tmp_path / "processor.out").read_bytes()
        proc.kill()  # kill -9: nothing is flushed
        proc.wait(30)
        with running_alertmanager(tmp_path / "am", port=port) as am:
            assert active_alerts(am) == []
            proc = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=out, stderr=out)
            deadline = time.monotonic() + 60
            while not active_alerts(am):
                assert time.monotonic() < deadline, (tmp_path / "processor.out").read_text()[-3000:]
                time.sleep(0.2)
            (alert,) = active_alerts(am)
            assert alert["labels"]["customer_id"] == "cust_1"
            assert alert["labels"]["incident_id"] == stored_incidents(influx_settings)[0]["id"]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)
        out.close()


def test_webhook_down_for_a_while_then_back_loses_nothing(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text(lines(90, slow=(40, 50)) + lines(1, start_min=90, seed=3))
    receiver = WebhookReceiver()  # not started: connection refused
    env = subprocess_env(influx_settings, WEBHOOK_URL=receiver.url, SLO_TARGETS="")
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(4.0)
        assert proc.poll() is None  # ingest waits for its alerts
        receiver.start()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    finally:
        receiver.stop()
        if proc.poll() is None:
            proc.kill()
    (stored,) = stored_incidents(influx_settings)
    assert stored["status"] == "resolved"
    keys = [h.get("Idempotency-Key") for h, _ in receiver.received]
    assert set(keys) == {f"{stored['id']}:firing", f"{stored['id']}:resolved"}
    bodies = {b["status"]: b for _, b in receiver.received}
    assert bodies["resolved"]["ended_at"] is not None and bodies["firing"]["ended_at"] is None
    assert bodies["resolved"]["kind"] == "latency" and bodies["resolved"]["customer_id"] == "cust_1"
    assert "usual" in bodies["resolved"]["summary"]


def test_ingest_gives_up_non_zero_when_alerts_cannot_be_delivered(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text(lines(50, slow=(40, 60)))
    env = subprocess_env(
        influx_settings, WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook", ALERT_GIVE_UP_S="2", SLO_TARGETS=""
    )
    done = ingest(env, log)
    assert done.returncode != 0
    assert "not delivered" in done.stderr and "ALERT_GIVE_UP_S" in done.stderr
