"""The log generator: format, counts, reproducibility, classic mode, injected incidents, live rate."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from logpulse.generator import GeneratorOptions, generate, make_lines

LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (cust_\d+) (/\S+) (\d{3}) (\d+\.\d{3})$")
NOW = dt.datetime(2024, 10, 1, tzinfo=dt.UTC)


def parse(path: Path) -> list[tuple[dt.datetime, str, str, int, float]]:
    rows = []
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        assert m, line
        ts = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        rows.append((ts, m.group(2), m.group(3), int(m.group(4)), float(m.group(5))))
    return rows


def test_live_backfill_count_order_and_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    for p in (a, b):
        generate(GeneratorOptions(out=p, count=5000, rate=10, customers=7, days=1, seed=3, now=NOW))
    rows = parse(a)
    assert len(rows) == 5000
    assert a.read_text() == b.read_text()  # reproducible
    times = [r[0] for r in rows]
    assert times == sorted(times)  # time-ordered
    assert NOW - dt.timedelta(days=1) <= times[0] and times[-1] <= NOW
    assert {r[1] for r in rows} <= {f"cust_{i}" for i in range(1, 8)}
    assert sum(r[3] < 400 for r in rows) / len(rows) > 0.8  # mostly successful


def test_classic_mode_distribution(tmp_path: Path) -> None:
    out = tmp_path / "c.log"
    assert generate(GeneratorOptions(out=out, count=20000, mode="classic", seed=1, now=NOW)) == 20000
    rows = parse(out)
    times = [r[0] for r in rows]
    assert times != sorted(times)  # shuffled, as the original generator
    assert min(times) >= NOW - dt.timedelta(days=30)
    assert {r[2] for r in rows} == {f"/api/v1/resource{i}" for i in range(1, 5)}
    assert {r[3] for r in rows} == {200, 201, 400, 401, 403, 404, 500}
    assert len({r[1] for r in rows}) == 50
    d = [r[4] for r in rows]
    assert min(d) >= 0.1 and max(d) <= 2.0 and abs(statistics.fmean(d) - 1.05) < 0.03


def test_incidents_ground_truth_matches_injected_data(tmp_path: Path) -> None:
    out = tmp_path / "i.log"
    generate(
        GeneratorOptions(
            out=out,
            count=None,
            rate=30,
            customers=4,
            days=0.5,
            seed=5,
            incidents=4,
            now=NOW,
            backfill_max_lines=None,
            live_seconds=0,
        )
    )
    truth = json.loads(Path(f"{out}.incidents.json").read_text())
    assert len(truth) == 4
    rows = parse(out)
    for inc in truth:
        start = dt.datetime.fromisoformat(inc["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(inc["end"].replace("Z", "+00:00"))
        assert end - start >= dt.timedelta(minutes=2)
        mine = [r for r in rows if r[1] == inc["customer"]]
        inside = [r for r in mine if start + dt.timedelta(seconds=1) <= r[0] < end]
        before = [r for r in mine if start - dt.timedelta(minutes=20) <= r[0] < start - dt.timedelta(minutes=1)]
        assert len(inside) >= 60 and len(before) >= 60  # >= 1 request/s customers
        if inc["kind"] == "latency":
            assert statistics.median(r[4] for r in inside) >= 2.5 * statistics.median(r[4] for r in before)
        else:
            fail = lambda rs: sum(r[3] >= 400 for r in rs) / len(rs)  # noqa: E731
            assert fail(inside) >= fail(before) + 0.25


def test_make_lines_is_pure_and_ordered() -> None:
    a = make_lines(100, customers=3, seed=1)
    assert a == make_lines(100, customers=3, seed=1) and len(a) == 100
    assert all(LINE.match(x.rstrip("\n")) for x in a)


def test_cli_live_rate(tmp_path: Path) -> None:
    out = tmp_path / "live.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logpulse",
            "generate",
            "--out",
            str(out),
            "--rate",
            "200",
            "--days",
            "0",
            "--seed",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # start-up (imports) takes seconds on a busy machine: measure after it
    while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    time.sleep(3)
    proc.terminate()
    assert proc.wait(10) == 0
    elapsed = time.monotonic() - started
    n = len(parse(out))
    # ~200 lines/s once writing; bounds loose enough for a loaded machine, tight enough to catch no pacing
    assert 200 * elapsed * 0.25 <= n <= 200 * (elapsed + 1) * 1.5
    assert "wrote" in proc.stderr.read()
