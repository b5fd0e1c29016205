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
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "sigint"])
def test_an_interrupted_second_ingest_never_lowers_the_rollups(
    influx_settings: Settings, tmp_path: Path, stop: signal.Signals
) -> None:
    log = tmp_path / "a.log"
    generate(
        log, "--mode", "classic", "--count", "400000", "--customers", "5", "--days", "2", "--seed", "3", "--end", END
    )
    env = subprocess_env(influx_settings, SCORING_ENABLED="false", STORE_RAW="false", READ_CHUNK_BYTES="65536")
    t0 = time.monotonic()
    ingest(env, log)
    full_s = time.monotonic() - t0
    truth = {
        (level.measurement, key): n for level in ROLLUP_LEVELS for key, (n, *_rest) in reference([log], level).items()
    }
    assert counts(influx_settings) == truth

    # mid-file: past start-up, well before the end (the second ingest rewrites as fast as the first
    # wrote, so a fixed delay would outlast a whole ingest once ingesting gets faster)
    for delay in (0.6 * full_s,):
        proc = subprocess.Popen([sys.executable, "-m", "logpulse", "ingest", str(log)], env=env)
        polls, lowest = 0, {}
        started = time.monotonic()
        stopped_at = None
        while True:
            now = counts(influx_settings)
            polls += 1
            for k, n in truth.items():
                lowest[k] = min(lowest.get(k, n), now.get(k, 0))
            low = {k: (now.get(k, 0), n) for k, n in truth.items() if now.get(k, 0) < n}
            assert not low, f"poll {polls}: {len(low)} windows below the truth, e.g. {sorted(low.items())[:3]}"
            if stopped_at is None and time.monotonic() - started > delay:
                assert proc.poll() is None, "the ingest ended before it was stopped: not mid-file"
                proc.send_signal(stop)
                stopped_at = time.monotonic()
            if stopped_at is not None and proc.poll() is not None and time.monotonic() - stopped_at > 2:
                break
            assert time.monotonic() - started < 120
        assert polls > 5
        assert stopped_at - started < full_s, "stopped after a whole ingest's time: not mid-file"
        assert counts(influx_settings) == truth
    assert any(k[1][0] == FLEET_CUSTOMER for k in truth)
    assert_rollups_equal_raw(influx_settings, [log])
