"""The log generator: format, counts, reproducibility, classic mode, injected incidents, live rate."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path

from fixtures import GENERATED_LINE, generated_rows
from logpulse.generator import GeneratorOptions, generate, make_lines

NOW = dt.datetime(2024, 10, 1, tzinfo=dt.UTC)


def test_live_backfill_count_order_and_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    for p in (a, b):
        generate(GeneratorOptions(out=p, count=5000, rate=10, customers=7, days=1, seed=3, now=NOW))
    rows = generated_rows(a)
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
    rows = generated_rows(out)
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
            days=0.2,
            seed=5,
            incidents=4,
            now=NOW,
            backfill_max_lines=None,
            live_seconds=0,
        )
    )
    truth = json.loads(Path(f"{out}.incidents.json").read_text())
    assert len(truth) == 4
    # 0.5M lines: split, not regex + datetime per line; stamps compare as text ("YYYY-MM-DD HH:MM:SS")
    by_customer: dict[str, list[tuple[str, int, float]]] = {}
    for line in out.read_text().splitlines():
        _day, _time, customer, _path, status, duration = line.split(" ")
        by_customer.setdefault(customer, []).append((line[:19], int(status), float(duration)))

    def stamp(t: dt.datetime) -> str:
        """The bound as a line's stamp, rounded up to a whole second (lines carry whole seconds, so
        `bound <= stamp` and `stamp < bound` keep their meaning)."""
        return (t + dt.timedelta(microseconds=-t.microsecond % 1_000_000)).strftime("%Y-%m-%d %H:%M:%S")

    for inc in truth:
        start = dt.datetime.fromisoformat(inc["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(inc["end"].replace("Z", "+00:00"))
        assert end - start >= dt.timedelta(minutes=2)
        mine = by_customer.get(inc["customer"], [])
        lo, hi = stamp(start + dt.timedelta(seconds=1)), stamp(end)
        b_lo, b_hi = stamp(start - dt.timedelta(minutes=20)), stamp(start - dt.timedelta(minutes=1))
        inside = [r for r in mine if lo <= r[0] < hi]
        before = [r for r in mine if b_lo <= r[0] < b_hi]
        assert len(inside) >= 60 and len(before) >= 60  # >= 1 request/s customers
        if inc["kind"] == "latency":
            assert statistics.median(r[2] for r in inside) >= 2.5 * statistics.median(r[2] for r in before)
        else:
            fail = lambda rs: sum(r[1] >= 400 for r in rs) / len(rs)  # noqa: E731
            assert fail(inside) >= fail(before) + 0.25


def test_make_lines_is_pure_and_ordered() -> None:
    a = make_lines(100, customers=3, seed=1)
    assert a == make_lines(100, customers=3, seed=1) and len(a) == 100
    assert all(GENERATED_LINE.match(x.rstrip("\n")) for x in a)


def test_demo_fleet_meets_its_slo_until_an_incident_burns_budget(tmp_path: Path) -> None:
    """start.sh's demo (1 day at 8 lines/s, 10 customers, 3 incidents, no thinning): most customers
    keep most of their error budget (5xx against the default 99.5 % target); each error incident's
    5xx take a visible share of its customer's budget. All counted from the written lines."""
    out = tmp_path / "demo.log"
    generate(
        GeneratorOptions(
            out=out,
            days=1,
            rate=8,
            customers=10,
            incidents=3,
            seed=11,
            now=NOW,
            backfill_max_lines=None,
            live_seconds=0,
        )
    )
    truth = json.loads(Path(f"{out}.incidents.json").read_text())
    total: dict[str, int] = {}
    server: dict[str, int] = {}
    in_incident: dict[str, int] = {}
    windows = [(i["customer"], i["start"][:19].replace("T", " "), i["end"][:19].replace("T", " ")) for i in truth]
    windows = [w for w, i in zip(windows, truth, strict=True) if i["kind"] == "errors"]
    for line in out.read_text().splitlines():
        customer, status = line.split(" ")[2], line.split(" ")[4]
        total[customer] = total.get(customer, 0) + 1
        if status >= "500":
            server[customer] = server.get(customer, 0) + 1
            if any(c == customer and start <= line[:19] <= end for c, start, end in windows):
                in_incident[customer] = in_incident.get(customer, 0) + 1
    budget = {c: 1 - server.get(c, 0) / (total[c] * (1 - 0.995)) for c in total}
    assert len(total) == 10
    assert sum(b > 0 for b in budget.values()) >= 8, budget
    assert windows, truth  # seed 11 places at least one error incident
    for customer, _, _ in windows:
        allowed = total[customer] * (1 - 0.995)
        assert in_incident.get(customer, 0) >= 0.1 * allowed, (customer, in_incident, allowed)
