"""GET /freshness (the dashboard's live status) against a real influxd holding real `writes` marks."""

from __future__ import annotations

import time

from fixtures import running_api, subprocess_env
from logpulse import metrics
from logpulse.config import Settings
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.marks import write_mark_lines
from logpulse.storage.points import MARKS_RP

S = 1_000_000_000


def write_marks(settings: Settings, *lines: str) -> None:
    writer = InfluxWriter(Connection.from_settings(settings))
    writer.write(list(lines), rp=MARKS_RP)
    writer.close()


def test_backlog_bytes_sums_the_process_files() -> None:
    metrics.BACKLOG_BYTES.labels("/tmp/freshness-a.log").set(5)
    metrics.BACKLOG_BYTES.labels("/tmp/freshness-b.log").set(7)
    try:
        assert metrics.backlog_bytes() >= 12
        metrics.BACKLOG_BYTES.labels("/tmp/freshness-b.log").set(0)
        assert metrics.backlog_bytes() == 5 + sum(
            s.value for m in metrics.BACKLOG_BYTES.collect() for s in m.samples if "freshness-" not in s.labels["path"]
        )
    finally:
        metrics.BACKLOG_BYTES.remove("/tmp/freshness-a.log")
        metrics.BACKLOG_BYTES.remove("/tmp/freshness-b.log")


def test_freshness_says_when_data_was_written_and_whether_the_processor_is_behind(influx_settings: Settings) -> None:
    with running_api(subprocess_env(influx_settings)) as api:
        empty = api.get("/freshness").json()
        assert empty["last_write"] is None and empty["behind"] is False

        now = time.time_ns()
        # a caught-up processor tailing a quiet log: old request times, nothing unread -> not behind
        write_marks(influx_settings, *write_mark_lines({"c1": (now - 3600 * S, now - 3000 * S)}, 0, now - 2 * S, 0))
        time.sleep(1.1)  # the answer is memoized for a second
        quiet = api.get("/freshness").json()
        assert quiet["behind"] is False and quiet["backlog_bytes"] == 0
        assert abs(quiet["lag_s"] - 2998) < 1
        assert quiet["last_write"].startswith(time.strftime("%Y-%m-%dT", time.gmtime((now - 2 * S) / S)))

        # two workers; the newest mark of each counts: worker 1 reports 5 MiB unread -> behind
        write_marks(
            influx_settings,
            *write_mark_lines({"c1": (now - 10 * S, now - 9 * S)}, 0, now - 1 * S, 1000),
            *write_mark_lines({"c2": (now - 10 * S, now - 8 * S)}, 1, now - 1 * S + 5, 5 << 20),
        )
        time.sleep(1.1)
        behind = api.get("/freshness").json()
        assert behind["behind"] is True and behind["backlog_bytes"] == 5 << 20
        assert abs(behind["lag_s"] - 7) < 0.01  # newest request written: now - 8 s, last write now - 1 s

        # caught up again: the newest marks say nothing is unread
        write_marks(influx_settings, *write_mark_lines({"c2": (now - 2 * S, now - 1 * S)}, 1, now, 0))
        time.sleep(1.1)
        assert api.get("/freshness").json()["behind"] is False  # worker 0's 1000 bytes are under 1 MiB
