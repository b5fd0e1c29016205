"""Compaction of open rollup windows end to end: real `logpulse ingest`, `logpulse compact` and `logpulse
serve` against a real influxd, every window of the data still open (`--now` a day after the data,
COMPACTION_LATENESS_S 30 days). The sealed identities' points (file segments read to their end) are
merged and deleted while the file's last segment, which can still grow, stays beside them; every
customer-day and the fleet view equal numbers computed from the raw lines before and after, after that
last segment grew, after late data, and while `compact` is killed with SIGKILL at random moments. And
the sink writes a segment's seal only after InfluxDB acknowledged the segment's points."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_compaction_e2e import (
    check_api,
    compact,
    generate,
    ingested,
    kill_compact_at_random_moments,
    merged,
    offsets_per_window,
    rows_per_window,
)
from test_rollup_api_e2e import run
from test_rollups_e2e import assert_rollups_equal_raw

from fixtures import Proxy, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.storage import compacted, seals
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_LEVELS

NOW = "2026-10-21T12:00:00Z"  # a day after the data: with a lateness of 30 days every window is open
LATENESS_S = 30 * 86400
CENTURY_S = 100 * 365 * 86400
"""A lateness under which the API (on today's clock) takes every window of the data for open, so it reads
`covers` in its first read (`readmodel/counting.py`); with LATENESS_S it reads the mixed ones again."""
MIN_SEALED = 2
ZONES = ("UTC", "Asia/Kathmandu")


def open_env(settings: Settings, lateness_s: int = LATENESS_S, **extra: str) -> dict[str, str]:
    """Small segments (many identities per window, most of them sealed), no scoring, no answer cache."""
    return subprocess_env(
        settings,
        ROLLUP_SEGMENT_BYTES="16384",
        SCORING_ENABLED="false",
        STATS_CACHE_S="0",
        COMPACTION_LATENESS_S=str(lateness_s),
        COMPACTION_OPEN_MIN_SEALED=str(MIN_SEALED),
        **extra,
    )


def sealed_of(settings: Settings) -> dict[str, seals.Seals]:
    writer = InfluxWriter(Connection.from_settings(settings))
    try:
        return {level.measurement: seals.read(writer, level, 0) for level in ROLLUP_LEVELS}
    finally:
        writer.close()


def assert_sealed_merged(settings: Settings) -> int:
    """After a complete pass: each window holds at most one compacted point, beside sources of segments
    still open and fewer sealed ones than COMPACTION_OPEN_MIN_SEALED (they wait for more). Returns how many
    windows hold a compacted point."""
    sealed = sealed_of(settings)
    merged_windows = 0
    for (level, customer, start), offsets in offsets_per_window(settings).items():
        generations = [o for o in offsets if o < compacted.MAX_GENERATIONS]
        assert len(generations) <= 1, (level, customer, start, offsets)
        left = [o for o in offsets if o >= compacted.MAX_GENERATIONS and sealed[level].sealed(start, o)]
        assert len(left) < MIN_SEALED, (level, customer, start, left)
        merged_windows += bool(generations)
    return merged_windows


@pytest.mark.parametrize("api_lateness_s", [LATENESS_S, CENTURY_S], ids=["read-again", "covers-first"])
def test_open_windows_merge_sealed_sources_and_stay_exact(
    influx_settings: Settings, tmp_path: Path, api_lateness_s: int
) -> None:
    env = open_env(influx_settings)
    a, more, late = tmp_path / "a.log", tmp_path / "more.log", tmp_path / "late.log"
    lines_a, lines_more, lines_late = (
        generate(env, a, 1, 9000),
        generate(env, more, 2, 4000),
        generate(env, late, 3, 3000),
    )
    run(env, "ingest", str(a))
    before = offsets_per_window(influx_settings)
    assert max(len(o) for o in before.values()) > 4  # many identities per window
    sealed = sealed_of(influx_settings)
    for level in ROLLUP_LEVELS:  # the file's last segment of each level is not sealed: it can still grow
        unsealed = {
            o
            for (lvl, _, s), offsets in before.items()
            if lvl == level.measurement
            for o in offsets
            if not sealed[lvl].sealed(s, o)
        }
        assert len(unsealed) == 1, (level.measurement, unsealed)
    with running_api({**env, "COMPACTION_LATENESS_S": str(api_lateness_s)}) as api:
        check_api(api, lines_a, ZONES)
        out = compact(env, "--now", NOW)
        assert assert_sealed_merged(influx_settings) > 50, out
        assert any(len(o) == 2 for o in offsets_per_window(influx_settings).values())  # merged + the open segment
        assert_rollups_equal_raw(influx_settings, [a])  # plain sums of what is stored: no covered source left
        check_api(api, lines_a, ZONES)
        assert compact(env, "--now", NOW).startswith("compacted 0 windows, 0 DELETE"), out  # idempotent

        # the file grows: its last segment (unsealed, beside the merged points) grows and closes
        with a.open("a") as f:
            f.write(more.read_text())
        run(env, "ingest", str(a))
        check_api(api, merged(lines_a, lines_more), ZONES)
        compact(env, "--now", NOW)
        assert_sealed_merged(influx_settings)
        assert_rollups_equal_raw(influx_settings, [a])
        check_api(api, merged(lines_a, lines_more), ZONES)

        run(env, "ingest", str(late))  # late data: new identities beside the merged points
        check_api(api, merged(lines_a, lines_more, lines_late), ZONES)
        compact(env, "--now", NOW)
        assert_sealed_merged(influx_settings)
        assert_rollups_equal_raw(influx_settings, [a, late])
        check_api(api, merged(lines_a, lines_more, lines_late), ZONES)

        # once the windows close, the closed-window rule merges what is left (the open segments too)
        compact(env, "--now", "2026-12-01T00:00:00Z")
        per_window = rows_per_window(influx_settings)
        assert set(per_window.values()) == {1}, per_window
        check_api(api, merged(lines_a, lines_more, lines_late), ZONES)


def test_open_compaction_killed_at_random_moments_never_counts_twice_or_zero(
    influx_settings: Settings, tmp_path: Path
) -> None:
    env = open_env(influx_settings, CENTURY_S)  # the polling API reads `covers` at once: windows it deems open
    paths, by_customer = ingested(env, tmp_path)
    # a pass logs ~15 open day chunks (3 levels x the data's 4-5 UTC days)
    # a kill lands 0-0.3 s after a pass's first few chunks, so on a fast machine a pass that had only a few
    # chunks left (earlier kills' chunks stay done) ended before it: kills come early, half must land
    killed = kill_compact_at_random_moments(env, by_customer, 11, "--now", NOW, chunk_line=" open day ", most_chunks=4)
    assert killed >= 3  # kills that hit a pass with open windows left to do
    assert assert_sealed_merged(influx_settings) > 50
    assert_rollups_equal_raw(influx_settings, paths)


class RollupWritesHeld(Proxy):
    """Holds every request that carries rollup points (a `hist` field) until `release`; the rest passes."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.holding = True
        self.held_points = threading.Event()

    def _pump(self, a: socket.socket, b: socket.socket, gate: bool) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                if gate and self.holding and b"hist=" in data:
                    self.held_points.set()
                    self.passing.wait()
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)


def test_a_seal_is_written_only_after_its_points_are_acknowledged(influx_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    generate(open_env(influx_settings), path, 5, 12000)
    url = httpx.URL(influx_settings.influxdb_url)
    proxy = RollupWritesHeld((url.host, url.port or 8086))
    proxy.hold()
    env = open_env(influx_settings, INFLUXDB_URL=f"http://127.0.0.1:{proxy.port}")
    try:
        ingest = subprocess.Popen([sys.executable, "-m", "logpulse", "ingest", str(path)], env=env)
        assert proxy.held_points.wait(60)  # the first segment's points are on their way, not acknowledged
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the seals that follow them must not arrive meanwhile
            assert not any(sealed_of(influx_settings).values())
            time.sleep(0.2)
        assert ingest.poll() is None
        proxy.release()
        assert ingest.wait(120) == 0
    finally:
        proxy.close()
    sealed = sealed_of(influx_settings)
    assert all(sealed.values())  # every level sealed segments (all but its last)
    stored = {(level, o) for (level, _, _), found in offsets_per_window(influx_settings).items() for o in found}
    assert {(level, o) for level, s in sealed.items() for o in s.spans} <= stored  # each seal names stored points
