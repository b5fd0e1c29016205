"""A tailing processor's restart mark, against a real influxd and real API processes.

A processor killed between InfluxDB acknowledging a batch and the batch's `writes` marks (written up
to half a second later) resumes from its last snapshot; data acknowledged before that snapshot is not
written again, so nothing would ever mark it, and readers that follow the marks — the answer cache and
the fleet's day replica — would serve what they derived before, for good. The test writes rollup
points straight to InfluxDB without marks (what the killed run left), checks that both readers still
serve their old answers, then starts `logpulse process`: its restart mark makes both answer the data,
the same answer as an API that reads InfluxDB every time. Dates are fixed, never today's.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fixtures import rollup_lines, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_RP

NS = 10**9
DAY = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
FLEET = {"from": "2026-03-04", "to": "2026-03-04", "sort": "p99_latency", "order": "desc", "limit": 1000}
STATS = {"from": "2026-03-04", "to": "2026-03-04"}


def records(customer: str, n: int, duration: str, offset_s: int = 0) -> list[tuple[str, int, int, str]]:
    t0 = int(DAY.timestamp()) * NS
    return [(customer, t0 + (offset_s + 60 * i) * NS, 200, duration) for i in range(n)]


def answers(api: httpx.Client) -> tuple[object, object]:
    fleet, stats = api.get("/stats", params=FLEET), api.get("/customers/cust_a/stats", params=STATS)
    assert fleet.status_code == 200 and stats.status_code == 200, (fleet.text, stats.text)
    return fleet.json(), stats.json()


def quantiles(answer: tuple[object, object]) -> dict[str, tuple[float, float]]:
    rows = answer[0]["customers"]  # type: ignore[index]
    return {r["customer_id"]: (r["median_latency"], r["p99_latency"]) for r in rows}


def wait_trusted(api: httpx.Client, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "logpulse_fleet_replica_trusted 1.0" not in api.get("/metrics").text:
        assert time.monotonic() < deadline, "the API never polled the writes marks"
        time.sleep(0.1)


def test_a_restarted_processor_makes_readers_drop_what_its_killed_run_left_unmarked(
    influx_settings: Settings, tmp_path: Path
) -> None:
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(
        rollup_lines(records("cust_a", 40, "0.100") + records("cust_b", 40, "0.200"), fleet=True, tables=True),
        rp=ROLLUP_RP,
    )
    env = subprocess_env(influx_settings, SCORING_ENABLED="false")
    with (
        running_api({**env, "STATS_CACHE_S": "0"}) as replica,
        running_api({**env, "STATS_CACHE_S": "3600", "FLEET_REPLICA_MAX_ENTRIES": "0"}) as cached,
        running_api({**env, "STATS_CACHE_S": "0", "FLEET_REPLICA_MAX_ENTRIES": "0"}) as direct,
    ):
        wait_trusted(replica)
        before = answers(direct)
        assert answers(replica) == before and answers(cached) == before  # loaded / cached now
        # what a killed run acknowledged and never marked: slow requests of cust_a, another identity
        writer.write(
            rollup_lines(records("cust_a", 40, "2.500", 30), fleet=True, tables=True, identity=1), rp=ROLLUP_RP
        )
        after = answers(direct)
        assert after != before
        time.sleep(1.5)  # three polls of the marks: no mark, so both keep their old answers
        assert answers(cached) == before
        # the replica's quantiles are its held histograms' (the counts beside them are read each time)
        assert quantiles(answers(replica)) == quantiles(before) != quantiles(after)
        log = tmp_path / "api_requests.log"
        log.write_text("")
        out = (tmp_path / "processor.out").open("wb")
        processor = subprocess.Popen(
            [sys.executable, "-m", "logpulse", "process"], env={**env, "LOG_PATH": str(log)}, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 60
            while answers(replica) != after or answers(cached) != after:
                assert processor.poll() is None, (tmp_path / "processor.out").read_text()[-3000:]
                assert time.monotonic() < deadline, "the readers kept their answers after the processor started"
                time.sleep(0.3)
        finally:
            processor.terminate()
            processor.wait(30)
    fleet, stats = after  # the slow requests are there: cust_a leads the fleet by p99 now
    assert fleet["customers"][0]["customer_id"] == "cust_a"  # type: ignore[index]
    assert stats["summary"]["total_requests"] == 80  # type: ignore[index]
    writer.close()
