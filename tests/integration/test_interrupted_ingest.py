"""An interrupted `ingest` of a file that was ingested before never lowers the stored rollups: a real
`logpulse ingest` subprocess is stopped mid-file (kill -9, and SIGINT: the graceful stop a user's Ctrl-C
asks for) while a reader polls InfluxDB, and no poll ever sees a customer-window below its true count."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_rollups_e2e import END, assert_rollups_equal_raw, counts, generate, ingest, reference

from fixtures import subprocess_env
from logpulse.config import Settings
from logpulse.progress import STATS_FILE_ENV, sum_stats
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS

LINES = 400_000


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "sigint"])
def test_an_interrupted_second_ingest_never_lowers_the_rollups(
    influx_settings: Settings, tmp_path: Path, stop: signal.Signals
) -> None:
    log = tmp_path / "a.log"
    generate(
        log, "--mode", "classic", "--count", str(LINES), "--customers", "5", "--days", "2", "--seed", "3", "--end", END
    )
    env = subprocess_env(influx_settings, SCORING_ENABLED="false", STORE_RAW="false", READ_CHUNK_BYTES="65536")
    t0 = time.monotonic()
    ingest(env, log)
    full_s = time.monotonic() - t0
    truth = {
        (level.measurement, key): n for level in ROLLUP_LEVELS for key, (n, *_rest) in reference([log], level).items()
    }
    assert counts(influx_settings) == truth

    # mid-file, measured rather than timed: the stop is sent once the ingest's own counters (the file a
    # cluster member reports them in) say it has written some of the lines and not all of them
    stats_file = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env={**env, STATS_FILE_ENV: str(stats_file)}
    )
    polls, stopped_at_written = 0, None
    started = time.monotonic()
    while True:
        now = counts(influx_settings)
        polls += 1
        low = {k: (now.get(k, 0), n) for k, n in truth.items() if now.get(k, 0) < n}
        assert not low, f"poll {polls}: {len(low)} windows below the truth, e.g. {sorted(low.items())[:3]}"
        if stopped_at_written is None:
            written = sum_stats([stats_file]).get("written", 0)
            assert proc.poll() is None, f"the ingest ended before it was stopped (written {written}): not mid-file"
            if 0 < written < LINES:
                proc.send_signal(stop)
                stopped_at_written, stopped_at = written, time.monotonic()
        elif proc.poll() is not None and time.monotonic() - stopped_at > 2:
            break
        assert time.monotonic() - started < 120 + full_s
    assert polls > 5
    assert counts(influx_settings) == truth
    assert any(k[1][0] == FLEET_CUSTOMER for k in truth)
    assert_rollups_equal_raw(influx_settings, [log])
