"""Stop means stop: `logpulse process` stopped (SIGINT) while InfluxDB is down exits within seconds,
loses nothing (what was not acknowledged is read again at the next start), and a second SIGINT ends
it at once even while a write hangs. Real processes, a real influxd that is stopped or frozen."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from fixtures import requires_influxd, subprocess_env
from logpulse.config import Settings
from logpulse.storage.influxd import LocalInfluxd

LOGPULSE = [sys.executable, "-m", "logpulse", "process"]


def generate(path: Path, seed: int) -> list[str]:
    subprocess.run(
        [sys.executable, "-m", "logpulse", "generate", "--out", str(path), "--count", "3000", "--rate", "1",
         "--customers", "4", "--days", "1", "--seed", str(seed)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path.read_text().splitlines(keepends=True)


def stored_per_customer(url: str, database: str) -> Counter[str]:
    r = httpx.get(
        f"{url}/query",
        params={"db": database, "q": 'SELECT COUNT("duration") FROM "requests" GROUP BY "customer_id"'},
        timeout=30,
    )
    return Counter(
        {s["tags"]["customer_id"]: int(s["values"][0][1]) for s in r.json()["results"][0].get("series") or []}
    )


def wait_until(what: str, ready: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def stop_once_stored_exactly_once(proc: subprocess.Popen[bytes], url: str, database: str, lines: list[str]) -> None:
    """Wait until every line is stored, stop the processor cleanly, and check each line counts once."""
    want = Counter(line.split(" ")[2] for line in lines)
    wait_until("every line is stored", lambda: stored_per_customer(url, database) == want)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    assert stored_per_customer(url, database) == want  # each line exactly once


def stopped_within(proc: subprocess.Popen[bytes], limit_s: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        code = proc.wait(limit_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"still running {limit_s} s after SIGINT") from None
    return code, time.monotonic() - started


@requires_influxd
def test_sigint_with_influxdb_stopped_exits_in_seconds_and_loses_nothing(
    influx_settings: Settings, tmp_path: Path
) -> None:
    first = generate(tmp_path / "first.log", 1)
    second = generate(tmp_path / "second.log", 2)
    log = tmp_path / "api.log"
    log.write_text("".join(first))
    db = LocalInfluxd.start(tmp_path / "influxd")
    out = open(tmp_path / "processor.out", "ab")  # noqa: SIM115 - shared by both runs
    env = subprocess_env(
        influx_settings, INFLUXDB_URL=db.url, LOG_PATH=str(log), SNAPSHOT_INTERVAL_S="0.5", SCORING_ENABLED="false"
    )
    database = influx_settings.influxdb_database
    proc = subprocess.Popen(LOGPULSE, env=env, stdout=out, stderr=out)
    try:
        wait_until("the first lines are stored", lambda: sum(stored_per_customer(db.url, database).values()) >= 3000)
        db.stop()  # InfluxDB goes away; the processor reads more and cannot write it
        with log.open("a") as f:
            f.write("".join(second))
        wait_until("the processor retries", lambda: "retrying" in (tmp_path / "processor.out").read_text())
        proc.send_signal(signal.SIGINT)
        code, took = stopped_within(proc, 10)
        assert code == 0, (tmp_path / "processor.out").read_text()[-3000:]
        assert "read again at the next start" in (tmp_path / "processor.out").read_text()

        db.restart()
        proc = subprocess.Popen(LOGPULSE, env=env, stdout=out, stderr=out)
        stop_once_stored_exactly_once(proc, db.url, database, first + second)
        print(f"stopped {took:.2f} s after SIGINT with InfluxDB down")
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
        db.close()


@requires_influxd
def test_second_sigint_ends_the_processor_at_once_while_a_write_hangs(
    influx_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "api.log"
    lines = generate(tmp_path / "all.log", 3)
    log.write_text("".join(lines[:1000]))
    db = LocalInfluxd.start(tmp_path / "influxd")
    env = subprocess_env(influx_settings, INFLUXDB_URL=db.url, LOG_PATH=str(log), INFLUXDB_TIMEOUT_S="120")
    proc = subprocess.Popen(LOGPULSE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert db.pid is not None
    try:
        database = influx_settings.influxdb_database
        wait_until("the first lines are stored", lambda: sum(stored_per_customer(db.url, database).values()) >= 1000)
        db_pid = db.pid
        subprocess.run(["kill", "-STOP", str(db_pid)], check=True)  # frozen: a write now hangs
        with log.open("a") as f:
            f.write("".join(lines[1000:]))
        time.sleep(3)  # read, and its write sent into the frozen influxd
        proc.send_signal(signal.SIGINT)
        time.sleep(2)
        assert proc.poll() is None, "the first SIGINT waits for the write in flight"
        proc.send_signal(signal.SIGINT)
        code, took = stopped_within(proc, 3)
        assert code == -signal.SIGINT
        print(f"second SIGINT: gone after {took:.2f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        if db.pid is not None:
            subprocess.run(["kill", "-CONT", str(db.pid)], check=False)
        db.close()


@requires_influxd
def test_one_sigint_ends_a_drain_hung_on_a_frozen_influxdb_after_the_grace_and_loses_nothing(
    influx_settings: Settings, tmp_path: Path
) -> None:
    first, second, third = (generate(tmp_path / f"{n}.log", n) for n in (4, 5, 6))
    log = tmp_path / "api.log"
    log.write_text("".join(first))
    db = LocalInfluxd.start(tmp_path / "influxd")
    out = open(tmp_path / "processor.out", "ab")  # noqa: SIM115 - shared by both runs
    env = subprocess_env(
        influx_settings, INFLUXDB_URL=db.url, LOG_PATH=str(log), INFLUXDB_TIMEOUT_S="120", STOP_GRACE_S="3",
        SNAPSHOT_INTERVAL_S="0.5", SCORING_ENABLED="false",
    )  # fmt: skip
    database = influx_settings.influxdb_database
    proc = subprocess.Popen(LOGPULSE, env=env, stdout=out, stderr=out)
    assert db.pid is not None
    db_pid = db.pid
    try:
        wait_until("the first lines are stored", lambda: sum(stored_per_customer(db.url, database).values()) >= 3000)
        subprocess.run(["kill", "-STOP", str(db_pid)], check=True)  # frozen: a write now hangs for 120 s
        with log.open("a") as f:
            f.write("".join(second))
        time.sleep(3)  # read, and its write sent into the frozen influxd
        proc.send_signal(signal.SIGINT)
        code, took = stopped_within(proc, 10)
        assert code == 0, (tmp_path / "processor.out").read_text()[-3000:]
        assert took >= 2.5, f"gone {took:.2f} s after SIGINT: before the grace, with a write in flight?"
        assert "(STOP_GRACE_S): stopping now" in (tmp_path / "processor.out").read_text()

        # thawed, influxd may still store the write that hung: the restart must not count it twice
        subprocess.run(["kill", "-CONT", str(db_pid)], check=True)
        proc = subprocess.Popen(LOGPULSE, env=env, stdout=out, stderr=out)
        with log.open("a") as f:  # stored only once the restarted processor runs
            f.write("".join(third))
        stop_once_stored_exactly_once(proc, db.url, database, first + second + third)
        print(f"one SIGINT with InfluxDB frozen: gone after {took:.2f} s (STOP_GRACE_S=3)")
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["kill", "-CONT", str(db_pid)], check=False)
        out.close()
        db.close()
