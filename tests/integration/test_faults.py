"""Delivery guarantees under real faults: kill -9, influxd down, rotation, partial lines, clusters.

Every test runs the real `logpulse process` / `logpulse ingest` against a real influxd and compares
per customer-day counts in InfluxDB with counts computed here from the bytes of the log files.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from fixtures import Appender, subprocess_env
from logpulse.config import Settings
from logpulse.generator import make_lines
from logpulse.ports import free_port
from logpulse.storage.influxd import LocalInfluxd


def expected_counts(*texts: str) -> Counter[tuple[str, str]]:
    """(customer, day) -> number of valid lines, from raw log text."""
    c: Counter[tuple[str, str]] = Counter()
    for text in texts:
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 6:
                c[(parts[2], parts[0])] += 1
    return c


def stored_counts(settings: Settings) -> Counter[tuple[str, str]]:
    q = 'SELECT COUNT("duration") FROM "requests" GROUP BY time(1d), "customer_id" fill(none)'
    r = httpx.get(f"{settings.influxdb_url}/query", params={"db": settings.influxdb_database, "q": q}, timeout=30)
    out: Counter[tuple[str, str]] = Counter()
    for s in r.json()["results"][0].get("series", []) or []:
        for t, n in s["values"]:
            out[(s["tags"]["customer_id"], t[:10])] = n
    return out


def wait_for(settings: Settings, want: Counter, timeout_s: float = 90) -> Counter:
    deadline = time.monotonic() + timeout_s
    got: Counter = Counter()
    while time.monotonic() < deadline:
        try:
            got = stored_counts(settings)
        except (httpx.TransportError, KeyError, ValueError):
            got = Counter()
        if got == want:
            time.sleep(1.0)  # and it stays so (nothing doubled by a late replay)
            return stored_counts(settings)
        time.sleep(0.3)
    return got


class Processor:
    """`logpulse process` as a supervisor would run it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Processor:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpulse", "process"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            catches_sigterm(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def catches_sigterm(pid: int, timeout_s: float = 60.0) -> bool:
    """Wait until `pid` has installed its SIGTERM handler (bit 15 of SigCgt in /proc): a SIGTERM sent while
    a loaded machine is still importing would take the default action, which is not what is tested here."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        caught = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:")), 0)
        if caught & (1 << (signal.SIGTERM - 1)):
            return True
        time.sleep(0.05)
    return False


def env_for(settings: Settings, log: Path, **extra: str) -> dict[str, str]:
    return subprocess_env(
        settings, LOG_PATH=str(log), SNAPSHOT_INTERVAL_S="0.5", POLL_INTERVAL_S="0.05", LOG_LEVEL="INFO", **extra
    )


def test_kill_9_five_times_while_appending(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    lines = make_lines(6000, customers=6, seconds=3 * 86400, seed=11)
    writer = Appender(log, lines, burst=30, pause_s=0.01)
    port = free_port()
    proc = Processor(env_for(influx_settings, log, METRICS_PORT=str(port)), tmp_path / "processor.out").start()
    writer.start()
    rnd = random.Random(5)
    for _ in range(5):
        time.sleep(rnd.uniform(1.0, 3.0))
        proc.kill9()
        proc.start()
    writer.join()
    got = wait_for(influx_settings, expected_counts(log.read_text()))
    deadline = time.monotonic() + 60  # the last start is up (its SIGTERM handler installed) before the stop
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    assert proc.stop() == 0
    assert got == expected_counts(log.read_text()) and sum(got.values()) == 6000


def test_influxd_down_for_20_seconds(influx_settings: Settings, tmp_path: Path) -> None:
    db = LocalInfluxd.start(tmp_path / "influx")
    try:
        settings = influx_settings.model_copy(update={"influxdb_url": db.url})
        log = tmp_path / "api.log"
        lines = make_lines(3000, customers=4, seconds=86400, seed=12)
        proc = Processor(env_for(settings, log, WRITE_GIVE_UP_S="300"), tmp_path / "processor.out").start()
        writer = Appender(log, lines, burst=20, pause_s=0.02)
        writer.start()
        time.sleep(2)
        db.stop()
        time.sleep(21)
        assert proc.proc is not None and proc.proc.poll() is None  # still running, retrying
        db.restart()
        writer.join()
        got = wait_for(settings, expected_counts(log.read_text()))
        assert proc.stop() == 0
        assert got == expected_counts(log.read_text()) and sum(got.values()) == 3000
        assert "retrying" in (tmp_path / "processor.out").read_text()
    finally:
        db.close()


def test_gives_up_then_resumes_from_snapshot(influx_settings: Settings, tmp_path: Path) -> None:
    db = LocalInfluxd.start(tmp_path / "influx")
    try:
        settings = influx_settings.model_copy(update={"influxdb_url": db.url})
        log = tmp_path / "api.log"
        log.write_text("".join(make_lines(1000, customers=3, seed=13)))
        env = env_for(settings, log, WRITE_GIVE_UP_S="3")
        proc = Processor(env, tmp_path / "processor.out").start()
        assert wait_for(settings, expected_counts(log.read_text()))
        db.stop()
        with open(log, "a") as f:
            f.write("".join(make_lines(500, customers=3, seed=14)))
        assert proc.proc is not None and proc.proc.wait(60) != 0  # gave up: non-zero exit
        assert "gave up after 3 s (WRITE_GIVE_UP_S)" in (tmp_path / "processor.out").read_text()
        db.restart()
        proc.start()
        got = wait_for(settings, expected_counts(log.read_text()))
        assert proc.stop() == 0
        assert got == expected_counts(log.read_text()) and sum(got.values()) == 1500
    finally:
        db.close()


def test_rename_and_copy_truncate_rotation(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    lines = make_lines(4000, customers=5, seconds=2 * 86400, seed=15)
    proc = Processor(env_for(influx_settings, log), tmp_path / "processor.out").start()
    log.write_text("".join(lines[:20]))  # rotations start once the processor reads (its start takes seconds)
    deadline = time.monotonic() + 60
    while not stored_counts(influx_settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    writer = Appender(log, lines[20:], burst=20, pause_s=0.01)
    writer.start()
    time.sleep(1.5)
    writer.paused.set()  # logrotate's rename: the writer reopens its file afterwards
    log.rename(tmp_path / "api.log.1")
    writer.paused.clear()
    time.sleep(1.5)
    writer.paused.set()  # copy-truncate: copy, truncate in place; the writer keeps its file
    wait_for(influx_settings, expected_counts((tmp_path / "api.log.1").read_text(), log.read_text()))
    shutil.copy(log, tmp_path / "api.log.2")
    with open(log, "r+") as f:
        f.truncate(0)
    writer.paused.clear()
    writer.join()
    files = [tmp_path / n for n in ("api.log.1", "api.log.2", "api.log")]
    want = expected_counts(*(f.read_text() for f in files))
    got = wait_for(influx_settings, want)
    assert proc.stop() == 0
    assert got == want and sum(got.values()) == 4000
    out = (tmp_path / "processor.out").read_text()
    assert "rotated" in out and "truncated" in out


def test_partial_lines_written_in_two_pieces(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    lines = make_lines(200, customers=2, seed=16)
    proc = Processor(env_for(influx_settings, log), tmp_path / "processor.out").start()
    with open(log, "a") as f:
        for i, line in enumerate(lines):
            cut = random.Random(line).randint(1, len(line) - 2)
            f.write(line[:cut])
            f.flush()
            time.sleep(0.2 if i % 20 == 0 else 0.005)  # some halves sit there over several polls
            f.write(line[cut:])
            f.flush()
    got = wait_for(influx_settings, expected_counts("".join(lines)))
    assert proc.stop() == 0
    assert got == expected_counts("".join(lines))
    dead = Path(influx_settings.dead_letter_path)
    assert not dead.exists() or dead.read_text() == ""  # no half line was rejected


def test_sigterm_drains_snapshots_and_exits_0(influx_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("".join(make_lines(500, customers=3, seed=17)) + "a malformed line\n")
    env = env_for(influx_settings, log)
    proc = Processor(env, tmp_path / "processor.out").start()
    assert wait_for(influx_settings, expected_counts(log.read_text()))
    assert proc.stop() == 0
    proc.start()  # resumes at its snapshot: nothing is read twice
    time.sleep(4)
    assert proc.stop() == 0
    rejected = Path(influx_settings.dead_letter_path).read_text().splitlines()
    assert len(rejected) == 1 and json.loads(rejected[0])["line"] == "a malformed line"


# Anomaly scores are left out: they depend on the order in which one customer's lines from several
# files reach its scorer, which differs between runs with any number of workers.
STATS_Q = (
    'SELECT COUNT("duration"), SUM("failed"), MEAN("duration"), MEDIAN("duration"), PERCENTILE("duration", 99) '
    'FROM "requests" GROUP BY time(1d), "customer_id" fill(none)'
)


def full_stats(settings: Settings, db: str) -> dict:
    r = httpx.get(f"{settings.influxdb_url}/query", params={"db": db, "q": STATS_Q}, timeout=30)
    return r.json()["results"]


def test_cluster_2x2_over_4_files_equals_1_worker(influx_settings: Settings, tmp_path: Path) -> None:
    files = []
    for i in range(4):
        f = tmp_path / f"api-{i}.log"
        f.write_text("".join(make_lines(3000, customers=5, seconds=3 * 86400, seed=20 + i)))
        files.append(str(f))
    one = subprocess_env(influx_settings, INFLUXDB_DATABASE="one")
    many = subprocess_env(influx_settings, INFLUXDB_DATABASE="many")
    for env, args in ((one, ["--workers", "1", "--processes", "1"]), (many, ["--workers", "2", "--processes", "2"])):
        done = subprocess.run(
            [sys.executable, "-m", "logpulse", "ingest", *files, *args],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "read 12000 lines, written 12000, rejected 0" in done.stdout
    a, b = full_stats(influx_settings, "one"), full_stats(influx_settings, "many")
    assert a == b and a[0]["series"]
