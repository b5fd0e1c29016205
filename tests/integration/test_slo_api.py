"""SLO fields of `/customers/{id}/stats` and `/stats` against a real influxd: the
error budget left, per day (burn-down) and for the range, equals the value computed here from the
raw log lines — 5xx counted from the lines' status text, per local day, over the trailing window —
with no SLO, a met target, an overspent one, a customer's own target, 4xx that must not count, a
window longer than the range, another zone, and rollup points that predate the 5xx count."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures import rollup_lines, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_RP

NS = 10**9
FIRST = dt.date(2026, 9, 1)
DAYS = 25
WINDOW = 10  # SLO_WINDOW_DAYS in these tests: shorter than the data, longer than some ranges
TARGETS = "default=99.5,cust_7=99.9"
OLD_DAY = FIRST + dt.timedelta(days=19)  # cust_old's points of this UTC day lack server_errors


def make_log(seed: int = 3) -> list[str]:
    """Lines in the logpulse format; each customer's share of 5xx (and of 4xx) per day is chosen so
    that the cases differ: within budget, overspent, 4xx only, a burst of 5xx, one of them by cust_7."""
    rng = random.Random(seed)
    plan = {  # customer: (P(5xx) per day index -> probability, P(404))
        "cust_ok": (lambda d: 0.002, 0.05),
        "cust_over": (lambda d: 0.02, 0.02),
        "cust_4xx": (lambda d: 0.0, 0.3),
        "cust_burn": (lambda d: 0.08 if 8 <= d <= 10 else 0.0005, 0.02),
        "cust_7": (lambda d: 0.003, 0.01),
        "cust_old": (lambda d: 0.004, 0.01),
    }
    lines = []
    for d in range(DAYS):
        day = FIRST + dt.timedelta(days=d)
        for customer, (p5, p4) in plan.items():
            for _ in range(rng.randint(80, 160)):
                x = rng.random()
                status = rng.choice((500, 502, 503)) if x < p5(d) else 404 if x < p5(d) + p4 else 200
                t = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=rng.randrange(86_400))
                lines.append(f"{t:%Y-%m-%d %H:%M:%S} {customer} /p {status} {rng.randrange(1, 900) / 1000:.3f}")
    return lines


Line = tuple[str, int, str]  # customer, UTC time ns, status text


def parse(lines: list[str]) -> list[Line]:
    out = []
    for line in lines:
        date, clock, customer, _path, status, _duration = line.split(" ")
        t = dt.datetime.fromisoformat(f"{date}T{clock}+00:00")
        out.append((customer, int(t.timestamp()) * NS, status))
    return out


def midnight(day: dt.date, tz: ZoneInfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), tz).timestamp()) * NS


def budget(lines: list[Line], customer: str, last: dt.date, tz: ZoneInfo, target_pct: float) -> float:
    """1 − (5xx / requests) / (1 − target) over the local days [last − WINDOW + 1, last]."""
    lo, hi = midnight(last - dt.timedelta(days=WINDOW - 1), tz), midnight(last + dt.timedelta(days=1), tz)
    statuses = [s for c, t, s in lines if c == customer and lo <= t < hi]
    if not statuses:
        return 1.0
    errors = sum(1 for s in statuses if s.startswith("5"))
    return 1 - (errors / len(statuses)) / (1 - target_pct / 100)


def target_of(customer: str) -> float:
    return 99.9 if customer == "cust_7" else 99.5


def touches_old(last: dt.date, tz: ZoneInfo) -> bool:
    """Whether the SLO window ending `last` (local days) overlaps cust_old's UTC day without the field."""
    lo, hi = midnight(last - dt.timedelta(days=WINDOW - 1), tz), midnight(last + dt.timedelta(days=1), tz)
    old_lo = midnight(OLD_DAY, ZoneInfo("UTC"))
    return lo < old_lo + 86_400 * NS and old_lo < hi


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return make_log()


def _rollups(lines: list[str]) -> list[str]:
    """The rollup points of the lines (two per window), cust_old's of OLD_DAY written as before the
    5xx count existed: without `server_errors`."""
    records = []
    for line in lines:
        date, clock, customer, _path, status, duration = line.split(" ")
        t = int(dt.datetime.fromisoformat(f"{date}T{clock}+00:00").timestamp()) * NS
        records.append((customer, t, int(status), duration))
    old_lo = midnight(OLD_DAY, ZoneInfo("UTC"))
    out = []
    for point in rollup_lines(records, parts=2):
        t = int(point.rsplit(" ", 1)[1])
        if point.split(" ", 1)[0].endswith(",customer_id=cust_old") and old_lo <= t < old_lo + 86_400 * NS:
            point, n = re.subn(r",server_errors=\d+i", "", point)
            assert n == 1
        out.append(point)
    return out


@pytest.fixture()
def stored(influx_settings: Settings, lines: list[str]) -> Settings:
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(_rollups(lines), rp=ROLLUP_RP)
    writer.close()
    return influx_settings


@contextlib.contextmanager
def api_with(settings: Settings, targets: str) -> Iterator[httpx.Client]:
    env = subprocess_env(settings, STATS_CACHE_S="0", SLO_TARGETS=targets, SLO_WINDOW_DAYS=str(WINDOW))
    with running_api(env) as client:
        yield client


CUSTOMERS = ("cust_ok", "cust_over", "cust_4xx", "cust_burn", "cust_7", "cust_old")


def test_stats_budget_burn_down_and_fleet_equal_the_raw_lines(stored: Settings, lines: list[str]) -> None:
    parsed = parse(lines)
    with api_with(stored, TARGETS) as client:
        for zone in ("UTC", "America/New_York"):
            tz = ZoneInfo(zone)
            first, last = FIRST + dt.timedelta(days=2), FIRST + dt.timedelta(days=DAYS - 1)
            for customer in CUSTOMERS:
                body = client.get(
                    f"/customers/{customer}/stats", params={"from": str(first), "to": str(last), "tz": zone}
                ).json()
                where = f"{customer} {zone}"
                target = target_of(customer)
                assert body["summary"]["slo_target"] == target, where
                for day in [*body["days"], {"date": str(last), **body["summary"]}]:
                    d = dt.date.fromisoformat(day["date"])
                    got = day["error_budget_remaining"]
                    if customer == "cust_old" and touches_old(d, tz):
                        assert got is None, f"{where} {d}: a point without server_errors is in the window"
                    else:
                        assert got == pytest.approx(budget(parsed, customer, d, tz, target), rel=1e-12), f"{where} {d}"
                assert len(body["days"]) >= DAYS - 3, where  # every day has requests (the edge days in NY)
        utc = ZoneInfo("UTC")
        last = FIRST + dt.timedelta(days=DAYS - 1)

        def summary(customer: str) -> float:
            got = client.get(f"/customers/{customer}/stats", params={"from": str(FIRST), "to": str(last)}).json()
            return float(got["summary"]["error_budget_remaining"])

        # the cases are what they say: met, overspent, 4xx never count, a burst recovered from
        assert 0 < summary("cust_ok") < 1
        assert summary("cust_over") < 0
        assert summary("cust_4xx") == 1.0
        burn = client.get("/customers/cust_burn/stats", params={"from": str(FIRST), "to": str(last)}).json()["days"]
        left = [d["error_budget_remaining"] for d in burn]
        assert min(left) < 0 < left[-1], "the burst overspends, and the window later forgets it"
        assert 10 <= left.index(min(left)) < 10 + WINDOW  # lowest while the whole burst is in the window
        assert all(x == pytest.approx(1.0, abs=0.2) for x in left[:8])  # before it
        # cust_7's own target: the same lines against 99.5 % would leave more budget
        assert summary("cust_7") == pytest.approx(budget(parsed, "cust_7", last, utc, 99.9), rel=1e-12)
        assert summary("cust_7") < budget(parsed, "cust_7", last, utc, 99.5)

        # fleet: a 3-day range, the budget over the 10-day window ending with its last day
        fleet = client.get(
            "/stats", params={"from": str(last - dt.timedelta(days=2)), "to": str(last), "limit": 100}
        ).json()
        rows = {row["customer_id"]: row for row in fleet["customers"]}
        assert set(rows) == set(CUSTOMERS)
        for customer, row in rows.items():
            assert row["slo_target"] == target_of(customer)
            want = None if customer == "cust_old" else budget(parsed, customer, last, utc, target_of(customer))
            assert row["error_budget_remaining"] == (want if want is None else pytest.approx(want, rel=1e-12))
        # ... sortable by it, unknown last
        ordered = client.get(
            "/stats", params={"from": str(last), "to": str(last), "sort": "error_budget_remaining", "limit": 3}
        ).json()
        ids = [r["customer_id"] for r in ordered["customers"]]
        page2 = client.get(
            "/stats",
            params={
                "from": str(last),
                "to": str(last),
                "sort": "error_budget_remaining",
                "limit": 3,
                "cursor": ordered["next_cursor"],
            },
        ).json()
        ids += [r["customer_id"] for r in page2["customers"]]
        known = sorted((c for c in CUSTOMERS if c != "cust_old"), key=lambda c: rows[c]["error_budget_remaining"])
        assert ids == [*known, "cust_old"]


def test_without_slo_targets_the_fields_are_null(stored: Settings) -> None:
    with api_with(stored, "") as client:
        body = client.get("/customers/cust_ok/stats", params={"from": str(FIRST), "to": "2026-09-10"}).json()
        assert body["summary"]["slo_target"] is None
        assert body["summary"]["error_budget_remaining"] is None
        assert body["days"] and all(d["error_budget_remaining"] is None for d in body["days"])
        fleet = client.get("/stats", params={"from": str(FIRST), "to": "2026-09-10"}).json()
        assert fleet["customers"]
        assert all(r["slo_target"] is None and r["error_budget_remaining"] is None for r in fleet["customers"])
    # a target for one customer only: the others have none
    with api_with(stored, "cust_7=99.9") as client:
        fleet = client.get("/stats", params={"from": str(FIRST), "to": "2026-09-10"}).json()
        targets = {r["customer_id"]: r["slo_target"] for r in fleet["customers"]}
        assert targets == {c: 99.9 if c == "cust_7" else None for c in CUSTOMERS}
