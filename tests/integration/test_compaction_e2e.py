"""Compaction of closed rollup windows end to end: real `logpulse ingest`, `logpulse compact` and
`logpulse serve` processes against a real influxd. Every customer-day (UTC, New York, Kathmandu) and the
fleet view equal numbers computed here from the raw lines, before and after compaction, after late data
and after a compacted file is ingested again; and while `compact` is killed with SIGKILL at random
moments, a reader polling the API never sees a window counted twice or not at all."""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from test_rollup_api_e2e import Row, check, check_customer_days, lines_of, run
from test_rollups_e2e import assert_rollups_equal_raw

from fixtures import running_api, subprocess_env
from logpulse.config import Settings
from logpulse.readmodel.cache import POLL_S, TRUST_S
from logpulse.storage.points import ROLLUP_LEVELS, rollup_from

END = dt.date(2026, 10, 20)
FIRST, LAST = END - dt.timedelta(days=6), END + dt.timedelta(days=1)


def generate(env: dict[str, str], path: Path, seed: int, count: int) -> dict[str, list[Row]]:
    run(
        env,
        *("generate", "--out", str(path), "--mode", "classic", "--count", str(count), "--days", "4"),
        *("--seed", str(seed), "--customers", "5", "--rate", "0", "--end", str(END)),
    )
    return lines_of(path)


def settings_env(settings: Settings) -> dict[str, str]:
    """Small segments (many points per window), no scoring, no answer cache; windows of the data's days
    are closed long ago, so `compact` takes them all (closed windows only: `test_open_compaction.py`
    covers open ones)."""
    return subprocess_env(
        settings,
        ROLLUP_SEGMENT_BYTES="16384",
        SCORING_ENABLED="false",
        STATS_CACHE_S="0",
        COMPACTION_LATENESS_S="3600",
        COMPACTION_OPEN_MIN_SEALED="0",
    )


def merged(*parts: dict[str, list[Row]]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for part in parts:
        for customer, rows in part.items():
            out[customer] += rows
    return out


def offsets_per_window(settings: Settings) -> dict[tuple[str, str, int], list[int]]:
    """The time offset in its window of every point each (level, customer, window) holds now
    (compacted generations below 1 ms, sources above)."""
    got: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for level in ROLLUP_LEVELS:
        r = httpx.post(
            f"{settings.influxdb_url}/query",
            data={
                "db": settings.influxdb_database,
                "epoch": "ns",
                "q": f'SELECT "count" FROM {rollup_from(level)} GROUP BY "customer_id"',
            },
            timeout=60,
        )
        for s in r.json()["results"][0].get("series", []) or []:
            for t, _ in s["values"]:
                got[(level.measurement, s["tags"]["customer_id"], t - t % level.window_ns)].append(t % level.window_ns)
    return got


def rows_per_window(settings: Settings) -> Counter[tuple[str, str, int]]:
    """How many points each (level, customer, window) holds now (sources and compacted together)."""
    return Counter({k: len(v) for k, v in offsets_per_window(settings).items()})


def ingested(env: dict[str, str], tmp_path: Path) -> tuple[list[Path], dict[str, list[Row]]]:
    """Three generated files, ingested, and their lines per customer."""
    paths = [tmp_path / f"{i}.log" for i in range(3)]
    by_customer = merged(*(generate(env, p, 10 + i, 8000) for i, p in enumerate(paths)))
    run(env, "ingest", *map(str, paths))
    return paths, by_customer


def compact(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "compact", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def fleet_after_the_writes(api: httpx.Client, requests: int) -> dict[str, Any]:
    """The fleet view once it holds `requests` requests, or as it stands after the API's freshness bound.

    The fleet's day replica follows the writes marks, so an answer includes the data acknowledged
    before the API's last poll of them (every `cache.POLL_S`; a mark seen half-written waits one
    poll more; `cache.TRUST_S` at most): a read right after `ingest` returns may precede that poll.
    The caller checks every figure of the answer it gets; past the bound a stale one fails it."""
    deadline = time.monotonic() + TRUST_S + 2 * POLL_S
    while True:
        fleet: dict[str, Any] = api.get(
            "/stats", params={"from": str(FIRST), "to": str(LAST), "sort": "p99_latency"}
        ).json()
        if fleet["total"]["total_requests"] == requests or time.monotonic() > deadline:
            return fleet
        time.sleep(POLL_S / 5)


def check_api(api: httpx.Client, by_customer: dict[str, list[Row]], zones: tuple[str, ...]) -> None:
    """Every customer-day and summary in each zone, and the fleet view, against the raw lines."""
    for zone in zones:
        for customer, rows in sorted(by_customer.items()):
            check_customer_days(api, customer, rows, zone, FIRST, LAST)
    fleet = fleet_after_the_writes(api, sum(map(len, by_customer.values())))
    check(fleet["total"], [r for rows in by_customer.values() for r in rows], "fleet total")
    for c in fleet["customers"]:
        check(c, by_customer[c["customer_id"]], f"fleet {c['customer_id']}")


def assert_compacted(settings: Settings) -> None:
    per_window = rows_per_window(settings)
    assert per_window and set(per_window.values()) == {1}, Counter(per_window.values())


def test_compaction_exact_idempotent_late_data_and_reingest(influx_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(influx_settings)
    a, b, late = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "late.log"
    lines_a, lines_b, lines_late = generate(env, a, 1, 9000), generate(env, b, 2, 7000), generate(env, late, 3, 3000)
    run(env, "ingest", str(a), str(b))
    assert max(rows_per_window(influx_settings).values()) > 4  # many points per window: 2 files, small segments
    zones = ("UTC", "America/New_York", "Asia/Kathmandu")
    with running_api(env) as api:
        check_api(api, merged(lines_a, lines_b), zones)
        out = compact(env)
        assert_compacted(influx_settings)
        assert_rollups_equal_raw(influx_settings, [a, b])  # plain sums of what is stored: sources are gone
        check_api(api, merged(lines_a, lines_b), zones)

        assert compact(env).startswith("compacted 0 windows, 0 DELETE"), out  # idempotent
        assert_compacted(influx_settings)
        assert_rollups_equal_raw(influx_settings, [a, b])

        run(env, "ingest", str(late))  # late lines for the same days: new points beside the compacted ones
        assert max(rows_per_window(influx_settings).values()) > 1
        check_api(api, merged(lines_a, lines_b, lines_late), zones)
        compact(env)
        assert_compacted(influx_settings)
        assert_rollups_equal_raw(influx_settings, [a, b, late])
        check_api(api, merged(lines_a, lines_b, lines_late), zones)

        run(env, "ingest", str(a))  # a compacted file again: its points rewrite covered identities
        assert max(rows_per_window(influx_settings).values()) > 1
        check_api(api, merged(lines_a, lines_b, lines_late), zones)
        compact(env)
        assert_compacted(influx_settings)
        assert_rollups_equal_raw(influx_settings, [a, b, late])


def kill_compact_at_random_moments(
    env: dict[str, str],
    by_customer: dict[str, list[Row]],
    seed: int,
    *args: str,
    chunk_line: str = " day ",
    most_chunks: int = 12,
) -> int:
    """Start `logpulse compact` (with `args`) six times and kill it with SIGKILL after a random number
    (below `most_chunks`) of day chunks (log lines holding `chunk_line`), a random moment into the next,
    while a reader polls the
    API and checks every answer; then let a pass complete. Returns how many kills hit a pass with
    windows left to do; every answer the reader got was exact."""
    failures: list[str] = []
    polls = 0
    stop = threading.Event()

    def poll(api: httpx.Client) -> None:
        nonlocal polls
        while not stop.is_set():
            try:
                check_api(api, by_customer, ("UTC", "Asia/Kathmandu"))
            except AssertionError as exc:
                failures.append(str(exc))
            polls += 1

    rnd = random.Random(seed)
    killed_mid_pass = 0
    with running_api(env) as api:
        reader = threading.Thread(target=poll, args=(api,))
        reader.start()
        try:
            for _ in range(6):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "logpulse", "compact", *args], env=env, stderr=subprocess.PIPE, text=True
                )
                assert proc.stderr is not None
                chunks, wanted = 0, rnd.randrange(0, most_chunks)
                for line in proc.stderr:
                    chunks += chunk_line in line and "windows written" in line
                    if chunks > wanted:
                        break
                time.sleep(rnd.uniform(0.0, 0.3))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_mid_pass += proc.returncode == -signal.SIGKILL and chunks > wanted
            compact(env, *args)
            time.sleep(1)
        finally:
            stop.set()
            reader.join()
    assert polls >= 5 and not failures, (polls, failures[:3])
    return killed_mid_pass


def test_compaction_killed_at_random_moments_never_counts_twice_or_zero(
    influx_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(influx_settings)
    paths, by_customer = ingested(env, tmp_path)
    assert kill_compact_at_random_moments(env, by_customer, 7) >= 4  # most kills hit a pass with work left
    assert_compacted(influx_settings)
    assert_rollups_equal_raw(influx_settings, paths)


def test_compact_now_takes_only_windows_closed_by_then(influx_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(influx_settings)  # COMPACTION_LATENESS_S=3600
    path = tmp_path / "a.log"
    by_customer = generate(env, path, 4, 9000)
    run(env, "ingest", str(path))
    now = dt.datetime(2026, 10, 19, 0, 30, tzinfo=dt.UTC)
    closed_ns = int((now - dt.timedelta(hours=1)).timestamp()) * 10**9
    for bad in ("2026-10-19", "2026-10-19T00:30:00", "yesterday", "9999-01-01T00:00:00Z"):
        done = subprocess.run([sys.executable, "-m", "logpulse", "compact", "--now", bad], env=env, capture_output=True)
        assert done.returncode == 2 and b"--now" in done.stderr, done.stderr
    before = rows_per_window(influx_settings)
    out = compact(env, "--now", now.isoformat())
    after = rows_per_window(influx_settings)
    windows = {lvl.measurement: lvl.window_ns for lvl in ROLLUP_LEVELS}
    for key, n in after.items():
        level, _, start = key
        if start + windows[level] <= closed_ns:
            assert n == 1, (key, n)  # closed by then: merged
        else:
            assert n == before[key], (key, n)  # still open then: untouched
    assert any(n > 1 for n in after.values())  # the open windows hold several points
    assert compact(env, "--now", now.isoformat()).startswith("compacted 0 windows, 0 DELETE"), out
    with running_api(env) as api:
        check_api(api, by_customer, ("UTC", "America/New_York"))
