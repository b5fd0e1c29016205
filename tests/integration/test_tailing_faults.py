"""Tailing under real rotations and real resource limits, end to end through `logpulse process`.

- Debian's `logrotate` (own config and state file in the test's temp dir, forced rotations) rotates
  three logs in the three schemes it offers — copytruncate; create + rename; create + compress +
  delaycompress — while writers append, while InfluxDB (this test's own influxd, stopped by pid and
  restarted on the same dir and port) is away, and while files appear that did not exist at start.
- 1,000 files under `ulimit -n 256` (set in the child with setrlimit), some appended, some deleted,
  compressed rotations and a compressed backfill in the glob.
Expected figures per customer-day are computed here from the raw lines found on disk at the end
(compressed rotations decompressed with the standard library), not with logpulse code.
"""

from __future__ import annotations

import gzip
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from fixtures import LOGROTATE, Appender, requires, subprocess_env
from logpulse.config import Settings
from logpulse.generator import make_lines
from logpulse.ports import free_port
from logpulse.storage.influxd import LocalInfluxd

Stats = dict[tuple[str, str], tuple[int, float]]


def raw_stats(texts: list[str]) -> Stats:
    """(customer, day) -> (requests, sum of durations), from raw log text."""
    n: Counter[tuple[str, str]] = Counter()
    total: dict[tuple[str, str], float] = {}
    for text in texts:
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 6:
                key = (parts[2], parts[0])
                n[key] += 1
                total[key] = total.get(key, 0.0) + float(parts[5])
    return {k: (n[k], round(total[k], 6)) for k in n}


def disk_texts(directory: Path) -> list[str]:
    """Every log file in `directory` as text, compressed ones decompressed."""
    out = []
    for f in sorted(directory.iterdir()):
        if f.is_file():
            data = f.read_bytes()
            out.append((gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode())
    return out


def stored_stats(settings: Settings) -> Stats:
    q = 'SELECT COUNT("duration"), SUM("duration") FROM "requests" GROUP BY time(1d), "customer_id" fill(none)'
    r = httpx.post(f"{settings.influxdb_url}/query", data={"db": settings.influxdb_database, "q": q}, timeout=30)
    out: Stats = {}
    for s in r.json()["results"][0].get("series", []) or []:
        for t, n, total in s["values"]:
            out[(s["tags"]["customer_id"], t[:10])] = (n, round(total, 6))
    return out


def wait_for(settings: Settings, want: Stats, timeout_s: float = 60) -> Stats:
    deadline = time.monotonic() + timeout_s
    got: Stats = {}
    while time.monotonic() < deadline:
        try:
            got = stored_stats(settings)
        except (httpx.TransportError, KeyError, ValueError):
            got = {}
        if got == want:
            time.sleep(1.0)  # and it stays so: nothing doubled by a late replay
            return stored_stats(settings)
        time.sleep(0.3)
    return got


def processor(env: dict[str, str], out: Path, nofile: int | None = None) -> subprocess.Popen[bytes]:
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with open(out, "ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "logpulse", "process"], env=env, stdout=f, stderr=subprocess.STDOUT, preexec_fn=limit
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    """After a failed assertion: the processor this test started, by its pid."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(30)


LOGROTATE_CONF = """
{d}/api.log {{
    copytruncate
    rotate 100
    missingok
}}
{d}/web.log {{
    create
    rotate 100
    missingok
}}
{d}/svc.log {{
    create
    compress
    delaycompress
    rotate 100
    missingok
}}
"""


@requires(LOGROTATE)
def test_logrotate_three_schemes_with_influxdb_away_and_new_files(influx_settings: Settings, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    conf = tmp_path / "logrotate.conf"
    conf.write_text(LOGROTATE_CONF.format(d=logs))

    def rotate() -> None:
        done = subprocess.run(
            [str(LOGROTATE.path()), "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr

    db = LocalInfluxd.start(tmp_path / "influx")
    proc = None
    try:
        settings = influx_settings.model_copy(update={"influxdb_url": db.url})
        env = subprocess_env(
            settings,
            LOG_PATH=f"{logs}/*.log",
            DISCOVER_INTERVAL_S="0.2",
            POLL_INTERVAL_S="0.05",
            SNAPSHOT_INTERVAL_S="0.5",
            WRITE_GIVE_UP_S="300",
            LOG_LEVEL="INFO",
            METRICS_PORT=str(port := free_port()),
        )
        names = ("api.log", "web.log", "svc.log")
        for i, name in enumerate(names):  # history written before the processor starts
            (logs / name).write_text("".join(make_lines(100, customers=3, seed=60 + i)))
        proc = processor(env, tmp_path / "processor.out")
        history = raw_stats(disk_texts(logs))
        assert wait_for(settings, history) == history  # the processor is up and has read the history
        writers = [
            Appender(logs / name, make_lines(2000, customers=4, seconds=2 * 86400, seed=40 + i), burst=20, pause_s=0.02)
            for i, name in enumerate(names)
        ]
        for w in writers:
            w.start()
        time.sleep(0.7)
        rotate()
        time.sleep(0.5)
        db.stop()  # InfluxDB away: the processor stops reading while it retries; rotations go on
        rotate()
        late = Appender(logs / "late.log", make_lines(800, customers=2, seconds=86400, seed=51), burst=25, pause_s=0.02)
        late.start()  # a file that did not exist at start
        time.sleep(1.0)
        rotate()
        time.sleep(1.0)
        assert proc.poll() is None
        db.restart()
        rotate()
        for w in [*writers, late]:
            w.join()
        rotate()
        want = raw_stats(disk_texts(logs))
        got = wait_for(settings, want)
        read = metric(port, "logpulse_lines_read_total")
        assert stop(proc) == 0
        out = (tmp_path / "processor.out").read_text()
        assert got == want, f"read {read}, stored {sum(n for n, _ in got.values())}\n{out[-3000:]}"
        assert sum(n for n, _ in want.values()) >= 3 * 2100 + 800 - 100  # (copytruncate's own loss window aside)
        assert {f.name for f in logs.iterdir()} >= {"svc.log.4.gz", "api.log.5", "web.log.5", "late.log"}
        dead = Path(settings.dead_letter_path)
        assert not dead.exists() or dead.read_text() == ""
    finally:
        kill(proc)
        db.close()


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_thousand_files_under_ulimit_256(influx_settings: Settings, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(1000):
        (logs / f"f{i:04d}.log").write_text("".join(make_lines(6, customers=5, seconds=86400, seed=1000 + i)))
    with gzip.open(logs / "backfill.log.gz", "wt") as z:  # never read before: read decompressed
        z.write("".join(make_lines(500, customers=5, seconds=86400, seed=7)))
    port = free_port()
    env = subprocess_env(
        influx_settings,
        LOG_PATH=f"{logs}/*.log*",
        DISCOVER_INTERVAL_S="0.3",
        POLL_INTERVAL_S="0.05",
        SNAPSHOT_INTERVAL_S="0.5",
        METRICS_PORT=str(port),
        MAX_OPEN_FILES="100",
        CLOSE_IDLE_S="1",
    )
    proc = processor(env, tmp_path / "processor.out", nofile=256)
    try:
        check_thousand(influx_settings, logs, port, proc, tmp_path)
    finally:
        kill(proc)


def check_thousand(
    influx_settings: Settings, logs: Path, port: int, proc: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    first = raw_stats(disk_texts(logs))
    assert wait_for(influx_settings, first) == first, (tmp_path / "processor.out").read_text()[-3000:]
    assert metric(port, "logpulse_open_files") <= 100

    for i in range(0, 1000, 10):  # appended
        with open(logs / f"f{i:04d}.log", "a") as f:
            f.write("".join(make_lines(3, customers=5, seconds=86400, seed=5000 + i)))
    for i in range(5, 1000, 20):  # compressed rotations of files already read: skipped, never doubled
        with gzip.open(logs / f"f{i:04d}.log.1.gz", "wb") as z:
            z.write((logs / f"f{i:04d}.log").read_bytes())
    (logs / "new.log").write_text("".join(make_lines(40, customers=5, seconds=86400, seed=8)))
    deleted = {f"f{i:04d}.log": (logs / f"f{i:04d}.log").read_text() for i in range(7, 1000, 25)}
    for name in deleted:  # deleted after being read (none of them was appended): their points stay
        (logs / name).unlink()
    plain = [f.read_text() for f in sorted(logs.iterdir()) if not f.name.endswith(".gz")]
    backfill = gzip.decompress((logs / "backfill.log.gz").read_bytes()).decode()
    want = raw_stats([*plain, *deleted.values(), backfill])
    got = wait_for(influx_settings, want)
    lines_read = metric(port, "logpulse_lines_read_total")
    open_files = metric(port, "logpulse_open_files")
    assert stop(proc) == 0
    assert got == want
    assert lines_read == sum(n for n, _ in want.values())  # every line read once: the .1.gz copies skipped
    assert open_files <= 100
    dead = Path(influx_settings.dead_letter_path)
    assert not dead.exists() or dead.read_text() == ""  # no compressed bytes parsed as text


def logpulse(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logpulse", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_ingest_reads_a_gzip_file_decompressed(influx_settings: Settings, tmp_path: Path) -> None:
    text = "".join(make_lines(700, customers=3, seconds=86400, seed=9))
    with gzip.open(tmp_path / "old.log.gz", "wt") as z:
        z.write(text)
    done = logpulse(["ingest", str(tmp_path / "old.log.gz")], subprocess_env(influx_settings))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read 700 lines, written 700, rejected 0" in done.stdout
    assert stored_stats(influx_settings) == raw_stats([text])


def test_log_path_a_directory_is_one_line_and_a_missing_file_is_waited_for(
    influx_settings: Settings, tmp_path: Path
) -> None:
    env = subprocess_env(influx_settings, LOG_PATH=str(tmp_path), LOG_LEVEL="INFO")
    for args in (["process"], ["ingest", str(tmp_path)]):
        done = logpulse(args, env)
        err = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in err and "panicked" not in err, err
        assert f"a directory, not a file: {tmp_path}" in err and len(err.strip().splitlines()) == 1, err

    later = tmp_path / "later.log"
    env = subprocess_env(influx_settings, LOG_PATH=str(later), POLL_INTERVAL_S="0.05", DISCOVER_INTERVAL_S="0.2")
    proc = processor(env, tmp_path / "processor.out")
    try:
        deadline = time.monotonic() + 60
        while "does not exist yet" not in (tmp_path / "processor.out").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # several discoveries later: still said once
        text = "".join(make_lines(50, customers=2, seed=10))
        later.write_text(text)
        assert wait_for(influx_settings, raw_stats([text])) == raw_stats([text])
        assert stop(proc) == 0
        assert (tmp_path / "processor.out").read_text().count("does not exist yet; waiting for it") == 1
    finally:
        kill(proc)
