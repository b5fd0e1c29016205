"""Stats, series and the fleet view from rollups, against a real influxd, checked against numbers
computed independently from the raw records (sorting, in Python, per local day of each zone).

The rollup points are written here as the processor's rollup step writes them (per customer and
15-minute UTC window, two points per window with distinct identity offsets, which the API must add
up); the end-to-end tests through `logpulse ingest` are in test_pipeline_e2e.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from fixtures import expected_figures, rollup_lines, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.readmodel import fleet_tables
from logpulse.readmodel.localtime import DateRange
from logpulse.readmodel.plan import LEVELS, plan
from logpulse.readmodel.schemas import Series
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.influx import AsyncInfluxQuery, Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_RP

NS = 10**9
# 2026-10-24 .. 2026-11-02 UTC: Berlin falls back on 25 Oct (25-hour day), New York on 1 Nov
START = dt.datetime(2026, 10, 24, tzinfo=dt.UTC)
DAYS = 10
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kathmandu")
Record = tuple[str, int, int, str]  # customer, time ns, status, duration text


def make_records(seed: int = 5) -> list[Record]:
    """Three customers with different volumes; one with 4-decimal durations (approximate quantiles)."""
    rng = random.Random(seed)
    records: list[Record] = []
    for customer, n, digits in (("cust_a", 6000, 3), ("cust_b", 700, 3), ("cust_c", 900, 4)):
        for _ in range(n):
            t = int(START.timestamp()) * NS + rng.randrange(DAYS * 86_400 * NS)
            status = rng.choice((200, 200, 200, 201, 404, 500))
            records.append((customer, t, status, f"{rng.lognormvariate(-1.5, 0.6):.{digits}f}"))
    return records


def reference(records: list[Record]) -> dict[str, object] | None:
    """The README's definitions by sorting the raw durations."""
    return expected_figures([(r[2], float(r[3])) for r in records]) if records else None


def assert_figures(got: dict[str, object], want: dict[str, object] | None, exact: bool) -> None:
    assert want is not None
    for key in ("total_requests", "failed_requests", "successful_requests"):
        assert got[key] == want[key], key
    assert got["uptime"] == pytest.approx(want["uptime"], rel=1e-12)
    assert got["average_latency"] == pytest.approx(want["average_latency"], rel=1e-9)
    assert got["quantiles"] == ("exact" if exact else "approximate")
    tolerance = 1e-12 if exact else 0.005
    for key in ("median_latency", "p99_latency"):
        assert got[key] == pytest.approx(want[key], rel=tolerance), key


def local_day(t_ns: int, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(t_ns / NS, tz).date()


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return make_records()


@pytest.fixture()
def api(influx_settings: Settings, records: list[Record]) -> Iterator[httpx.Client]:
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(rollup_lines(records, parts=2), rp=ROLLUP_RP)
    writer.close()
    with running_api(subprocess_env(influx_settings, STATS_CACHE_S="0")) as client:
        yield client


def test_every_customer_day_equals_the_raw_lines_in_four_zones(api: httpx.Client, records: list[Record]) -> None:
    for zone in ZONES:
        tz = ZoneInfo(zone)
        first, last = START.date() - dt.timedelta(days=1), START.date() + dt.timedelta(days=DAYS)  # all data
        for customer, exact in (("cust_a", True), ("cust_b", True), ("cust_c", False)):
            mine = [r for r in records if r[0] == customer]
            params = {"from": str(first), "to": str(last), "tz": zone}
            body = api.get(f"/customers/{customer}/stats", params=params).json()
            by_day: dict[dt.date, list[Record]] = {}
            for r in mine:
                by_day.setdefault(local_day(r[1], tz), []).append(r)
            assert [d["date"] for d in body["days"]] == [str(d) for d in sorted(by_day)], (zone, customer)
            for day in body["days"]:
                assert_figures(day, reference(by_day[dt.date.fromisoformat(day["date"])]), exact)
            assert_figures(body["summary"], reference(mine), exact)
    # the DST days really have 25 hours of data: the windows of the repeated hour are in them
    ny = api.get("/customers/cust_a/stats", params={"from": "2026-11-01", "to": "2026-11-01", "tz": "America/New_York"})
    ny_day = [
        r
        for r in records
        if r[0] == "cust_a" and local_day(r[1], ZoneInfo("America/New_York")).isoformat() == "2026-11-01"
    ]
    assert ny.json()["days"][0]["total_requests"] == len(ny_day) > 0


@pytest.mark.parametrize(
    "interval, zone, frm, to",
    [
        ("15m", "Asia/Kathmandu", "2026-10-25", "2026-10-26"),
        ("1h", "America/New_York", "2026-11-01", "2026-11-01"),
        ("1h", "Europe/Berlin", "2026-10-25T00:00:00+02:00", "2026-10-25T05:00:00+01:00"),
        ("1d", "Europe/Berlin", "2026-10-24", "2026-11-02"),
        ("1h", "Asia/Kathmandu", "2026-10-30T10:15:00Z", "2026-10-30T20:00:00Z"),
    ],
)
def test_series_points_equal_the_raw_lines(
    api: httpx.Client, records: list[Record], interval: str, zone: str, frm: str, to: str
) -> None:
    tz = ZoneInfo(zone)
    body = api.get("/customers/cust_a/series", params={"from": frm, "to": to, "interval": interval, "tz": zone})
    assert body.status_code == 200, body.text
    assert body.headers["content-type"] == "application/json"
    # the body is serialised without pydantic (series_json): it must still be exactly the documented schema
    assert Series.model_validate_json(body.content).model_dump() == body.json()
    points = body.json()["points"]

    def bound(value: str, end: bool) -> int:
        if len(value) == 10:
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
            return int(dt.datetime.combine(day, dt.time(), tz).timestamp()) * NS
        return int(dt.datetime.fromisoformat(value).timestamp()) * NS

    lo, hi = bound(frm, False), bound(to, True)
    mine = [r for r in records if r[0] == "cust_a" and lo <= r[1] < hi]

    def key(t_ns: int) -> tuple[object, ...]:
        local = dt.datetime.fromtimestamp(t_ns / NS, tz)
        if interval == "1d":
            return (local.date(),)
        minute = local.minute - local.minute % 15 if interval == "15m" else 0
        return (local.date(), local.hour, minute, local.utcoffset())

    buckets: dict[tuple[object, ...], list[Record]] = {}
    for r in mine:
        buckets.setdefault(key(r[1]), []).append(r)
    assert len(points) == len(buckets) > 0
    starts = [dt.datetime.fromisoformat(p["start"]) for p in points]
    assert starts == sorted(starts)
    for p, start in zip(points, starts, strict=True):
        assert start.utcoffset() == start.astimezone(tz).utcoffset()  # written with the zone's offset
        t = max(int(start.timestamp()) * NS, lo)
        assert_figures(p, reference(buckets[key(t)]), exact=True)


def test_fleet_sorted_paged_and_total(api: httpx.Client, records: list[Record], influx_settings: Settings) -> None:
    params = {"from": "2026-10-24", "to": "2026-11-02", "tz": "UTC"}
    whole = api.get("/stats", params=params).json()
    assert_figures(whole["total"], reference(records), exact=False)  # cust_c is approximate
    by_customer = {c: [r for r in records if r[0] == c] for c in ("cust_a", "cust_b", "cust_c")}
    assert [c["customer_id"] for c in whole["customers"]] == ["cust_a", "cust_b", "cust_c"]
    for c in whole["customers"]:
        assert_figures(c, reference(by_customer[c["customer_id"]]), exact=c["customer_id"] != "cust_c")

    for sort in ("customer_id", "total_requests", "failed_requests", "uptime", "p99_latency"):
        for order in ("asc", "desc"):
            seen, cursor = [], None
            while True:
                page = api.get(
                    "/stats",
                    params={
                        **params,
                        "sort": sort,
                        "order": order,
                        "limit": 1,
                        **({"cursor": cursor} if cursor else {}),
                    },
                ).json()
                seen += page["customers"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            values = [c[sort] for c in seen]
            assert len(seen) == 3 and values == sorted(values, reverse=order == "desc"), (sort, order)
    r = api.get("/stats", params={**params, "sort": "uptime", "cursor": cursor or "bad!"})
    assert r.status_code == 422 and "'cursor'" in r.json()["detail"]

    # with fleet-wide rollups (customer `*`) the total comes from them: the same numbers, `*` never listed
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(
        [line for line in rollup_lines(records, parts=2, fleet=True) if "customer_id=* " in line], rp=ROLLUP_RP
    )
    writer.close()
    again = api.get("/stats", params=params).json()
    assert again["total"] == whole["total"] and [c["customer_id"] for c in again["customers"]] == [
        "cust_a",
        "cust_b",
        "cust_c",
    ]


def quantile_records(seed: int = 11) -> list[Record]:
    """Six customers whose latencies differ in scale and spread (exact: 3 decimals), so that medians and
    p99s order them differently, plus `cust_twin` with exactly cust_3's requests (a tie, broken by id)."""
    rng = random.Random(seed)
    records: list[Record] = []
    for k, (mu, sigma) in enumerate(((-2.0, 0.3), (-1.2, 0.2), (-2.2, 0.9), (-1.6, 0.5), (-2.6, 1.2), (-1.0, 0.1))):
        for _ in range(500 + 150 * k):
            t = int(START.timestamp()) * NS + rng.randrange(DAYS * 86_400 * NS)
            status = rng.choice((200, 200, 204, 404, 503))
            records.append((f"cust_{k}", t, status, f"{max(0.001, rng.lognormvariate(mu, sigma)):.3f}"))
    return records + [("cust_twin", t, status, d) for c, t, status, d in records if c == "cust_3"]


@pytest.mark.parametrize("tables", [True, False], ids=["fleet-tables", "per-customer-sums"])
def test_fleet_sorted_by_median_or_p99_equals_the_raw_lines_across_pages(
    influx_settings: Settings, tables: bool
) -> None:
    """Sorted by median_latency or p99_latency, both orders, walked two rows a page with the cursor, in
    UTC and in a zone whose days end on quarter-hours: the order (ties by id) and every row equal the
    raw lines' figures. With the `*` points' packed tables, and without them (points written before
    the tables existed: the sums are read per customer)."""
    records = quantile_records()
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(rollup_lines(records, parts=2, fleet=True, tables=tables), rp=ROLLUP_RP)
    writer.close()
    first, last = START.date() + dt.timedelta(days=1), START.date() + dt.timedelta(days=DAYS - 2)
    # the path under test: the tables hold every request of the range, or they are not used
    whole = DateRange(first, last, ZoneInfo("UTC"))
    bounds = np.asarray([whole.start_ns, whole.end_ns], np.int64)

    async def table_sums() -> fleet_tables.CustomerSums | None:
        client = AsyncInfluxQuery(Connection.from_settings(influx_settings))
        try:
            return await fleet_tables.customer_sums(client, plan(bounds), LEVELS)
        finally:
            await client.aclose()

    assert (asyncio.run(table_sums()) is not None) == tables
    with running_api(subprocess_env(influx_settings, STATS_CACHE_S="0")) as api:
        for zone in ("UTC", "Asia/Kathmandu"):
            tz = ZoneInfo(zone)
            mine: dict[str, list[Record]] = {}
            for r in records:
                if first <= local_day(r[1], tz) <= last:
                    mine.setdefault(r[0], []).append(r)
            want = {c: reference(rows) for c, rows in mine.items()}
            assert len(want) == 7 and len(mine["cust_0"]) < len([r for r in records if r[0] == "cust_0"])
            for sort in ("median_latency", "p99_latency"):
                for order in ("asc", "desc"):
                    expected = sorted(want, key=lambda c: (float(want[c][sort]) * (1 if order == "asc" else -1), c))
                    params = {"from": str(first), "to": str(last), "tz": zone, "sort": sort, "order": order}
                    seen: list[str] = []
                    cursor = None
                    while True:
                        page = api.get(
                            "/stats", params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
                        )
                        assert page.status_code == 200, page.text
                        for row in page.json()["customers"]:
                            assert_figures(row, want[row["customer_id"]], exact=True)
                        seen += [row["customer_id"] for row in page.json()["customers"]]
                        cursor = page.json()["next_cursor"]
                        if cursor is None:
                            break
                    assert seen == expected, (zone, sort, order)
                    assert seen.index("cust_3") + 1 == seen.index("cust_twin")  # a tie: the smaller id first


def test_exact_true_recomputes_from_raw_points_or_says_they_are_missing(
    api: httpx.Client, records: list[Record], influx_settings: Settings
) -> None:
    params = {"from": "2026-10-24", "to": "2026-11-02", "exact": "true"}
    # no raw points stored (as with STORE_RAW=false): a clear 422 that names exact, not numbers from partial data
    r = api.get("/customers/cust_c/stats", params=params)
    assert r.status_code == 422 and "exact" in r.json()["detail"] and "STORE_RAW" in r.json()["detail"]
    # exact rollups need no raw points at all
    assert api.get("/customers/cust_a/stats", params=params).json()["summary"]["quantiles"] == "exact"

    mine = [r for r in records if r[0] == "cust_c"]
    lines = [
        f'requests,customer_id=cust_c path="/p",status={s}i,failed={int(s >= 400)}i,duration={d} {t}'
        for _, t, s, d in mine
    ]
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(lines)
    writer.close()
    body = api.get("/customers/cust_c/stats", params=params).json()
    assert_figures(body["summary"], reference(mine), exact=True)
    # the SLO fields (from rollups, whatever `exact`) survive the recomputation
    plain = api.get("/customers/cust_c/stats", params={k: v for k, v in params.items() if k != "exact"}).json()
    assert body["summary"]["slo_target"] == plain["summary"]["slo_target"] == 99.5
    assert body["summary"]["error_budget_remaining"] == plain["summary"]["error_budget_remaining"] is not None
    assert [d["error_budget_remaining"] for d in body["days"]] == [d["error_budget_remaining"] for d in plain["days"]]
    day = body["days"][3]
    want = reference([r for r in mine if local_day(r[1], ZoneInfo("UTC")).isoformat() == day["date"]])
    assert_figures(day, want, exact=True)


def test_an_approximate_coarse_window_is_read_again_from_exact_finer_windows(
    api: httpx.Client, influx_settings: Settings
) -> None:
    """A day point may turn approximate (more distinct values than a coarse point keeps) where its
    hours and quarter-hours are exact: the answer then merges the finer windows and stays exact."""
    rng = random.Random(3)
    day = int(dt.datetime(2026, 10, 28, tzinfo=dt.UTC).timestamp()) * NS
    mine = [("cust_x", day + rng.randrange(86_400 * NS), 200, f"{rng.uniform(0.001, 9):.3f}") for _ in range(3000)]
    lines = rollup_lines(mine)
    as_approximate = LatencyHistogram.decode("1a;0;0;0;1;")  # empty, approximate: merging turns a copy approximate
    for i, line in enumerate(lines):
        if line.startswith("rollups_1d,"):
            head, hist = line.split('hist="')
            h = LatencyHistogram.decode(hist.split('"')[0])
            h.merge(as_approximate)
            lines[i] = f'{head}hist="{h.encode()}"{hist.split(chr(34), 1)[1]}'
            assert h.quantiles_label == "approximate"
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(lines, rp=ROLLUP_RP)
    writer.close()
    body = api.get("/customers/cust_x/stats", params={"from": "2026-10-28", "to": "2026-10-28"}).json()
    assert_figures(body["days"][0], reference(mine), exact=True)
    fleet = api.get("/stats", params={"from": "2026-10-28", "to": "2026-10-28", "sort": "p99_latency"}).json()
    x = next(c for c in fleet["customers"] if c["customer_id"] == "cust_x")
    assert_figures(x, reference(mine), exact=True)
