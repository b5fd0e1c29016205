"""Rollups end to end against a real influxd: every customer-window of every level equal to values
computed independently from the raw lines, through double ingest, a concurrent copy, other chunk
sizes, two files on two workers, classic (shuffled) mode, STORE_RAW=false and kill -9 replays."""

from __future__ import annotations

import calendar
import datetime as dt
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fixtures import free_port, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.storage import fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS, RollupLevel, rollup_from

Key = tuple[str, int]  # (customer, window start ns)


def reference(paths: list[Path], level: RollupLevel) -> dict[Key, tuple[int, int, int, Decimal, list[str]]]:
    """count, failed, server errors, exact sum and durations per customer-window (customer `*`: all
    customers), from the lines (not the parser)."""
    acc: dict[Key, list] = defaultdict(lambda: [0, 0, 0, Decimal(0), []])  # type: ignore[type-arg]
    window_s = level.window_ns // 10**9
    for path in paths:
        for line in path.read_text().splitlines():
            date, clock, customer, _path, status, duration = line.split(" ")
            y, mo, d = (int(x) for x in date.split("-"))
            hh, mm, ss = clock.split(":")
            sec = calendar.timegm((y, mo, d, int(hh), int(mm), int(ss[:2]), 0, 0, 0))
            for who in (customer, FLEET_CUSTOMER):  # each customer, and the fleet-wide `*` points
                a = acc[(who, (sec - sec % window_s) * 10**9)]
                a[0] += 1
                a[1] += int(status) >= 400
                a[2] += int(status) >= 500
                a[3] += Decimal(duration)
                a[4].append(duration)
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in acc.items()}


def stored(settings: Settings, level: RollupLevel) -> dict[Key, tuple[int, int, int, float, list[str]]]:
    """The level's points summed / merged per customer-window, as the API reads them. Every field of
    every point must be there: read this only once no processor writes (see `counts`)."""
    q = f'SELECT "count", "failed", "server_errors", "sum", "hist" FROM {rollup_from(level)} GROUP BY "customer_id"'
    r = httpx.get(
        f"{settings.influxdb_url}/query",
        params={"db": settings.influxdb_database, "q": q, "epoch": "ns"},
        timeout=60,
    )
    got: dict[Key, list] = defaultdict(lambda: [0, 0, 0, 0.0, []])  # type: ignore[type-arg]
    for s in r.json()["results"][0].get("series", []) or []:
        for t, n, f, e, total, hist in s["values"]:
            g = got[(s["tags"]["customer_id"], t - t % level.window_ns)]
            g[0] += n
            g[1] += f
            g[2] += e  # a point without the field would fail here: every point must carry it
            g[3] += total
            g[4].append(hist)
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in got.items()}


def assert_rollups_equal_raw(settings: Settings, paths: list[Path]) -> None:
    for level in ROLLUP_LEVELS:
        want = reference(paths, level)
        got = stored(settings, level)
        assert set(got) == set(want), f"{level.measurement}: windows differ"
        for key, (n, failed, server, total, durations) in want.items():
            g_n, g_failed, g_server, g_total, hists = got[key]
            where = f"{level.measurement} {key}"
            assert (g_n, g_failed, g_server) == (n, failed, server), where
            assert g_total == pytest.approx(float(total), rel=1e-12), where
            merged = LatencyHistogram.merge_many(hists)
            assert merged.exact, where
            assert merged == LatencyHistogram.from_text(durations), where
        tabled = fleet_tables_of(settings, level)  # the `*` points' packed per-customer tables
        assert set(tabled) == {k for k in want if k[0] != FLEET_CUSTOMER}, f"{level.measurement}: tables differ"
        for key, (n, failed, server, total) in tabled.items():
            assert (n, failed, server) == want[key][:3], f"{level.measurement} table {key}"
            assert total == round(want[key][3] * 10**9), f"{level.measurement} table {key}"


def fleet_tables_of(settings: Settings, level: RollupLevel) -> dict[Key, tuple[int, int, int, int]]:
    """count, failed, server errors, sum (ns) per customer-window from the `*` points' tables."""
    fields = ", ".join(f'"{f}"' for f in fleet_table.FIELDS)
    q = f"SELECT {fields} FROM {rollup_from(level)} WHERE \"customer_id\" = '{FLEET_CUSTOMER}'"
    r = httpx.get(
        f"{settings.influxdb_url}/query",
        params={"db": settings.influxdb_database, "q": q, "epoch": "ns"},
        timeout=60,
    )
    got: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for s in r.json()["results"][0].get("series", []) or []:
        for t, *parts in s["values"]:
            table = fleet_table.decode_many([p for p in parts if p])
            for i, c in enumerate(table.customers):
                g = got[(c, t - t % level.window_ns)]
                for j, col in enumerate((table.count, table.failed, table.server_errors, table.sum_ns)):
                    g[j] += int(col[i])
    return {k: (v[0], v[1], v[2], v[3]) for k, v in got.items()}


def generate(path: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "logpulse", "generate", "--out", str(path), *args], check=True, capture_output=True
    )


def ingest(env: dict[str, str], *paths: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", *map(str, paths)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


def raw_count(settings: Settings) -> int:
    r = httpx.get(
        f"{settings.influxdb_url}/query",
        params={"db": settings.influxdb_database, "q": 'SELECT COUNT("duration") FROM "requests"'},
    )
    series = r.json()["results"][0].get("series") or [{"values": [[0, 0]]}]
    return int(series[0]["values"][0][1])


END = "2026-10-26T06:00:00"
"""Where the generated logs end: fixed, so that the same lines are stored on any day."""

SMALL = {"ROLLUP_SEGMENT_BYTES": "16384", "SCORING_ENABLED": "false"}
"""Segments of 16 KB (1h: 64 KB, 1d: 512 KB) so that a small file crosses many segment boundaries."""


def test_double_ingest_a_concurrent_copy_and_other_chunks_never_double(
    influx_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "a.log"
    generate(log, "--count", "12000", "--rate", "2", "--customers", "4", "--days", "2", "--seed", "5", "--end", END)
    copy = tmp_path / "a-copy.log"
    shutil.copy(log, copy)
    ingest(subprocess_env(influx_settings, READ_CHUNK_BYTES="5000", WORKERS="2", **SMALL), log, copy)
    assert_rollups_equal_raw(influx_settings, [log])
    ingest(subprocess_env(influx_settings, READ_CHUNK_BYTES="7777", **SMALL), log)  # other chunk boundaries
    assert_rollups_equal_raw(influx_settings, [log])


def test_two_files_two_workers_classic_shuffled_without_raw(influx_settings: Settings, tmp_path: Path) -> None:
    shuffled = tmp_path / "classic.log"
    generate(
        shuffled, "--mode", "classic", "--count", "8000", "--customers", "5", "--days", "3", "--seed", "1", "--end", END
    )
    live = tmp_path / "live.log"
    generate(live, "--count", "8000", "--rate", "1", "--customers", "5", "--days", "3", "--seed", "2", "--end", END)
    env = subprocess_env(influx_settings, WORKERS="2", STORE_RAW="false", **SMALL)
    ingest(env, shuffled, live)
    assert_rollups_equal_raw(influx_settings, [shuffled, live])
    assert raw_count(influx_settings) == 0  # STORE_RAW=false: rollups only
    # /customers without raw points: totals from the rollups, first/last request to 15 minutes
    times: dict[str, list[int]] = defaultdict(list)
    for path in (shuffled, live):
        for line in path.read_text().splitlines():
            date, clock, customer = line.split(" ")[:3]
            times[customer].append(int(dt.datetime.fromisoformat(f"{date}T{clock}+00:00").timestamp()))
    with running_api(env) as api:
        listed = api.get("/customers", params={"limit": 100}).json()["customers"]
    quarter = 900
    assert [c["customer_id"] for c in listed] == sorted(times)
    for c in listed:
        t = times[c["customer_id"]]
        first, last = min(t) // quarter * quarter, max(t) // quarter * quarter + quarter - 1
        assert c["total_requests"] == len(t), c
        assert c["first_request"] == dt.datetime.fromtimestamp(first, dt.UTC).isoformat(), c
        assert c["last_request"] == dt.datetime.fromtimestamp(last, dt.UTC).isoformat(), c


def metric(port: int, name: str) -> float | None:
    """A sample of the processor's Prometheus endpoint (summed over labels), None while it is not up."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if re.match(rf"{name}(\{{.*\}})? ", line)]
    return sum(values) if values else None


def wait_until(what: str, ready: Callable[[], bool], timeout_s: float = 90, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(poll_s)


def counts(settings: Settings) -> dict[tuple[str, Key], int]:
    """count per level and customer-window as stored now, also while a processor writes.

    Only the `count` field is read: InfluxDB 1.x stores each field of a point on its own, so a reader
    racing a write can see a new point's other fields before its `count` (a row with `count` null;
    measured: 2,200 of 2.3 million rows read while two writers added points). `stored` reads every
    field and insists on all of them, so it is only for data no processor is writing any more."""
    got: dict[tuple[str, Key], int] = defaultdict(int)
    for level in ROLLUP_LEVELS:
        q = f'SELECT "count" FROM {rollup_from(level)} GROUP BY "customer_id"'
        r = httpx.get(
            f"{settings.influxdb_url}/query",
            params={"db": settings.influxdb_database, "q": q, "epoch": "ns"},
            timeout=60,
        )
        for s in r.json()["results"][0].get("series", []) or []:
            for t, n in s["values"]:
                got[(level.measurement, (s["tags"]["customer_id"], t - t % level.window_ns))] += n
    return dict(got)


def test_kill_9_replays_rewrite_never_add(influx_settings: Settings, tmp_path: Path) -> None:
    """`process` killed with SIGKILL several times while the log grows; each restart replays from the
    last snapshot (at-least-once), in other chunks than before. A restart stopped (SIGTERM) before its
    replay caught up takes no line out of what the killed runs wrote; the last run, stopped once it
    has read the whole file (its own metrics say so), leaves every line in every level exactly once."""
    full = tmp_path / "full.log"
    generate(full, "--count", "9000", "--rate", "1", "--customers", "4", "--days", "2", "--seed", "9")
    lines = full.read_text().splitlines(keepends=True)
    log = tmp_path / "api.log"
    port = free_port()
    env = subprocess_env(
        influx_settings,
        LOG_PATH=str(log),
        SNAPSHOT_INTERVAL_S="0.5",
        POLL_INTERVAL_S="0.05",
        ROLLUP_FLUSH_S="0.2",
        READ_CHUNK_BYTES="3000",
        METRICS_PORT=str(port),
        **SMALL,
    )
    out = open(tmp_path / "processor.out", "ab")  # noqa: SIM115 - shared by the restarts
    start = lambda **extra: subprocess.Popen(  # noqa: E731
        [sys.executable, "-m", "logpulse", "process"], env={**env, **extra}, stdout=out, stderr=out
    )
    proc = start()
    rnd = random.Random(3)
    last = len(lines) - 1500
    try:
        for i in range(0, last, 1500):
            time.sleep(2.5)  # the processor is up (and has caught up with what is there)
            with log.open("a") as f:
                f.write("".join(lines[i : i + 1500]))
            time.sleep(rnd.uniform(0.2, 0.9))  # killed while reading, writing, snapshotting
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            proc = start()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        # a run that takes no snapshot while it lives writes the last lines, then is killed: the
        # points hold lines past the last snapshot, which the next run must replay
        proc = start(SNAPSHOT_INTERVAL_S="600")
        wait_until("the processor tracks the file", lambda: (metric(port, "logpulse_tracked_files") or 0) >= 1)
        with log.open("a") as f:
            f.write("".join(lines[last:]))
        want = {(lv.measurement, k): v[0] for lv in ROLLUP_LEVELS for k, v in reference([log], lv).items()}
        wait_until("every line is in the rollups", lambda: counts(influx_settings) == want)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        # the next run (small chunks: a slow replay) is stopped (SIGTERM) as soon as its replay has
        # begun: it must take nothing out
        proc = start(READ_CHUNK_BYTES="300")
        wait_until("the replay has begun", lambda: (metric(port, "logpulse_bytes_read_total") or 0) > 0, poll_s=0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        left = counts(influx_settings)
        taken_out = {k: (n, left.get(k, 0)) for k, n in want.items() if left.get(k, 0) < n}
        assert not taken_out, f"(lines, left in the rollups) per level and customer-window: {taken_out}"
        assert left == want
        proc = start()
        wait_until(
            "the last run has read the whole file",  # unread bytes are counted once the file is tracked
            lambda: (metric(port, "logpulse_tracked_files") or 0) >= 1 and metric(port, "logpulse_backlog_bytes") == 0,
        )
        proc.send_signal(signal.SIGTERM)  # drains: everything read is written and acknowledged
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    assert_rollups_equal_raw(influx_settings, [log])
