"""The whole product end to end: log file -> `logpulse ingest` -> InfluxDB -> `logpulse serve` -> HTTP.

Expected numbers are computed here from the raw lines with the definitions of the README, not with
logpulse code: total, successful (< 400), failed (>= 400), uptime, mean, median (mean of the two
middle values for even n), p99 (1-based rank floor(0.99 n + 0.5), at least 1).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from faker import Faker

from fixtures import count_points, expected_figures, running_api, subprocess_env

START = dt.datetime(2024, 9, 25, tzinfo=dt.UTC)
DAYS = 5
CUSTOMERS = [f"cust_{i}" for i in range(1, 6)]  # 5 customers x 5 days = 25 customer-days
MALFORMED = [
    "this is not a log line",
    "2024-09-26 10:00:00 cust_1 /api/v1/x 200",  # missing duration
    "2024-02-30 10:00:00 cust_1 /api/v1/x 200 0.1",  # no such day
    "2024-09-26 10:00:00 cust_1 /api/v1/x 700 0.1",  # no such status
    "2024-09-26 10:00:00 cust'1 /api/v1/x 200 0.1",  # bad customer id
    "",
]


def build_log(path: Path, seed: int = 7) -> tuple[list[str], list[tuple[int, str]]]:
    """Write a log of valid lines (with same-second bursts and exact duplicates) and malformed lines.

    Returns the valid lines and (byte offset, text) of every malformed line.
    """
    rnd = random.Random(seed)
    fake = Faker()
    Faker.seed(seed)
    resources = [f"/api/v1/{fake.word()}/{fake.random_int(1, 999)}" for _ in range(8)]
    valid: list[str] = []
    for day in range(DAYS):
        for c in CUSTOMERS:
            for _ in range(rnd.randint(15, 40)):
                ts = START + dt.timedelta(days=day, seconds=rnd.randint(0, 86399))
                status = rnd.choice([200, 200, 200, 201, 204, 301, 400, 401, 404, 500, 503])
                valid.append(f"{ts:%Y-%m-%d %H:%M:%S} {c} {rnd.choice(resources)} {status} {rnd.uniform(0.05, 3):.3f}")
    # Several requests of one customer in the same second, some of them byte-identical.
    burst_ts = START + dt.timedelta(days=1, hours=12)
    valid += [f"{burst_ts:%Y-%m-%d %H:%M:%S} cust_1 /api/v1/burst 200 0.100"] * 4
    valid += [f"{burst_ts:%Y-%m-%d %H:%M:%S} cust_1 /api/v1/burst 500 {0.2 + i / 10:.3f}" for i in range(3)]
    valid.append(f"{burst_ts:%Y-%m-%d %H:%M:%S}.250000 cust_2 /api/v1/frac 200 0.700")
    rnd.shuffle(valid)
    lines = list(valid)
    for bad in MALFORMED:
        lines.insert(rnd.randint(0, len(lines)), bad)
    malformed: list[tuple[int, str]] = []
    offset = 0
    with path.open("w") as f:
        for line in lines:
            if line in MALFORMED:
                malformed.append((offset, line))
            f.write(line + "\n")
            offset += len(line.encode()) + 1
    return valid, malformed


def expected_stats(lines: list[str], customer: str, tz: str) -> tuple[dict[str, dict], dict]:
    """Per-day stats and the summary for one customer, computed from the raw lines."""
    zone = ZoneInfo(tz)
    per_day: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in lines:
        date, time, cust, _path, status, duration = line.split(" ")
        if cust != customer:
            continue
        ts = dt.datetime.fromisoformat(f"{date}T{time}+00:00").astimezone(zone)
        per_day[ts.date().isoformat()].append((int(status), float(duration)))

    days = {day: expected_figures(rows) for day, rows in per_day.items()}
    summary = expected_figures([r for rows in per_day.values() for r in rows])
    return days, summary


def assert_figures(got: dict, want: dict, where: str) -> None:
    for key, value in want.items():
        if isinstance(value, int):
            assert got[key] == value, f"{where} {key}: {got[key]} != {value}"
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), f"{where} {key}: {got[key]} != {value}"


def ingest(env: dict[str, str], *paths: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_ingest_then_api_matches_independent_computation(influx_settings, tmp_path: Path) -> None:
    log = tmp_path / "api_requests.log"
    valid, malformed = build_log(log)
    env = subprocess_env(influx_settings, SCORING_ENABLED="true")

    summary = ingest(env, log)
    total_lines = len(valid) + len(malformed)
    assert f"read {total_lines} lines" in summary
    assert f"written {len(valid)}" in summary
    assert f"rejected {len(malformed)}" in summary

    # Every malformed line is quarantined with its file, byte offset and a reason.
    quarantined = [json.loads(x) for x in Path(influx_settings.dead_letter_path).read_text().splitlines()]
    assert sorted((q["offset"], q["line"]) for q in quarantined) == sorted(malformed)
    assert all(q["file"].endswith("api_requests.log") and q["reason"] for q in quarantined)

    assert count_points(influx_settings) == len(valid)  # nothing overwritten, nothing lost

    with running_api(env) as api:
        last_day = (START + dt.timedelta(days=DAYS)).date().isoformat()
        for tz in ("UTC", "America/New_York"):
            for customer in CUSTOMERS:
                r = api.get(f"/customers/{customer}/stats", params={"from": "2024-09-20", "to": last_day, "tz": tz})
                assert r.status_code == 200, r.text
                body = r.json()
                want_days, want_summary = expected_stats(valid, customer, tz)
                assert [d["date"] for d in body["days"]] == sorted(want_days)
                for day in body["days"]:
                    assert_figures(day, want_days[day["date"]], f"{customer} {day['date']} {tz}")
                assert_figures(body["summary"], want_summary, f"{customer} summary {tz}")
        assert api.get("/customers/nobody/stats", params={"from": "2024-09-20", "to": last_day}).status_code == 404
        too_long = api.get("/customers/cust_1/stats", params={"from": "2020-01-01", "to": last_day})
        assert too_long.status_code == 422 and "maximum" in too_long.json()["detail"]
        assert api.get("/customers/cust_1/stats", params={"from": "2024-09-31"}).status_code == 422

    # Ingesting the same file again doubles nothing: point identity is deterministic.
    ingest(env, log)
    assert count_points(influx_settings) == len(valid)


def test_multi_worker_ingest_equals_single_worker(influx_settings, tmp_path: Path) -> None:
    """Two workers in one process over two files store exactly the points one worker stores."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    valid_a, _ = build_log(a, seed=1)
    valid_b, _ = build_log(b, seed=2)
    env = subprocess_env(influx_settings)
    out = ingest({**env, "WORKERS": "2"}, a, b)
    assert f"written {len(valid_a) + len(valid_b)}" in out
    assert count_points(influx_settings) == len(valid_a) + len(valid_b)
