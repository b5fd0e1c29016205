"""The rollup API end to end: `logpulse generate --mode classic` (random times, shuffled) over the 35
days before a fixed `--end` -> `logpulse ingest` twice, in small rollup segments (several points per
window) -> InfluxDB -> `logpulse serve`. Every customer-day of the stats, every hour of a DST-day series
and the fleet view equal numbers computed here from the raw lines by sorting, in UTC,
America/New_York, Europe/Berlin and Asia/Kathmandu. Run for two ends months apart, each span holding
both DST changes of its season: the answers depend on the data's dates only, never on today's.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures import expected_figures, running_api, subprocess_env
from logpulse.config import Settings

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kathmandu")
Row = tuple[dt.datetime, int, str]  # UTC time, status, duration text


def lines_of(path: Path) -> dict[str, list[Row]]:
    """Per customer, (time, status, duration) of every line, parsed here by splitting."""
    out: dict[str, list[Row]] = defaultdict(list)
    for line in path.read_text().splitlines():
        date, clock, customer, _path, status, duration = line.split(" ")
        out[customer].append((dt.datetime.fromisoformat(f"{date}T{clock}+00:00"), int(status), duration))
    return out


def figures(rows: list[Row]) -> dict[str, object]:
    return {**expected_figures([(s, float(x)) for _, s, x in rows]), "quantiles": "exact"}


def check(got: dict[str, object], rows: list[Row], where: str) -> None:
    for key, value in figures(rows).items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9), f"{where} {key}"
        else:
            assert got[key] == value, f"{where} {key}"


def check_customer_days(
    api: httpx.Client, customer: str, rows: list[Row], zone: str, first: dt.date, last: dt.date
) -> None:
    """A customer's stats from `first` to `last` in `zone`: every local day and the summary against its lines."""
    tz = ZoneInfo(zone)
    body = api.get(f"/customers/{customer}/stats", params={"from": str(first), "to": str(last), "tz": zone}).json()
    per_day: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        per_day[row[0].astimezone(tz).date().isoformat()].append(row)
    assert [d["date"] for d in body["days"]] == sorted(per_day), (zone, customer)
    for day in body["days"]:
        check(day, per_day[day["date"]], f"{customer} {day['date']} {zone}")
    check(body["summary"], rows, f"{customer} summary {zone}")


def run(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


SPANS = [  # (the data's end, New York's DST day inside the 35 days before it)
    pytest.param(dt.date(2026, 4, 5), dt.date(2026, 3, 8), id="spring-2026"),  # Berlin: 29 Mar (23 h days)
    pytest.param(dt.date(2026, 11, 20), dt.date(2026, 11, 1), id="autumn-2026"),  # Berlin: 25 Oct (25 h days)
]


@pytest.mark.parametrize(("end", "ny_dst_day"), SPANS)
def test_classic_log_ingested_twice_every_customer_day_in_four_zones(
    influx_settings: Settings, tmp_path: Path, end: dt.date, ny_dst_day: dt.date
) -> None:
    log = tmp_path / "classic.log"
    env = subprocess_env(influx_settings, ROLLUP_SEGMENT_BYTES="16384", SCORING_ENABLED="false", STATS_CACHE_S="0")
    run(
        env,
        "generate",
        "--out",
        str(log),
        "--mode",
        "classic",
        "--count",
        "12000",
        "--days",
        "35",
        "--seed",
        "4",
        "--customers",
        "8",
        "--rate",
        "0",
        "--end",
        str(end),
    )
    by_customer = lines_of(log)
    run(env, "ingest", str(log))
    run(env, "ingest", str(log))  # the same file again: nothing may be counted twice

    first, last = end - dt.timedelta(days=37), end + dt.timedelta(days=1)
    with running_api(env) as api:
        for zone in ZONES:
            for customer, rows in sorted(by_customer.items()):
                check_customer_days(api, customer, rows, zone, first, last)

        # New York's DST day: 23 or 25 local hours (the repeated 1:00 hour told apart by its offset)
        ny = ZoneInfo("America/New_York")
        rows = by_customer["cust_1"]
        answer = api.get(
            "/customers/cust_1/series",
            params={"from": str(ny_dst_day), "to": str(ny_dst_day), "interval": "1h", "tz": "America/New_York"},
        )
        series = answer.json()
        hours: dict[tuple[int, object], list[Row]] = defaultdict(list)
        for row in rows:
            local = row[0].astimezone(ny)
            if local.date() == ny_dst_day:
                hours[(local.hour, local.utcoffset())].append(row)
        assert answer.status_code == 200 and len(series["points"]) == len(hours) > 15
        assert {offset for _, offset in hours} == {
            ny.utcoffset(dt.datetime.combine(ny_dst_day, t)) for t in (dt.time(0), dt.time(23))
        }
        for point in series["points"]:
            start = dt.datetime.fromisoformat(point["start"])
            check(point, hours[(start.hour, start.utcoffset())], f"series {point['start']}")

        fleet = api.get("/stats", params={"from": str(first), "to": str(last), "sort": "p99_latency", "order": "desc"})
        body = fleet.json()
        check(body["total"], [r for rows in by_customer.values() for r in rows], "fleet total")
        assert sorted(c["customer_id"] for c in body["customers"]) == sorted(by_customer)
        for c in body["customers"]:
            check(c, by_customer[c["customer_id"]], f"fleet {c['customer_id']}")

        # default sort, paged, in a zone whose days end on quarter-hours (the 15m `*` points at the edges)
        everyone = [r for rows in by_customer.values() for r in rows]
        for zone in ("UTC", "Asia/Kathmandu"):
            tz = ZoneInfo(zone)
            lo, hi = end - dt.timedelta(days=26), end - dt.timedelta(days=2)  # a range inside the data
            local = {id(r): r[0].astimezone(tz).date() for r in everyone}
            params = {"from": str(lo), "to": str(hi), "tz": zone, "limit": "3"}
            seen: list[str] = []
            while True:
                page = api.get("/stats", params=params).json()
                check(page["total"], [r for r in everyone if lo <= local[id(r)] <= hi], f"fleet total {zone}")
                for c in page["customers"]:
                    check(
                        c,
                        [r for r in by_customer[c["customer_id"]] if lo <= local[id(r)] <= hi],
                        f"fleet {c['customer_id']} {zone}",
                    )
                seen += [c["customer_id"] for c in page["customers"]]
                if page["next_cursor"] is None:
                    break
                params["cursor"] = page["next_cursor"]
            assert seen == sorted(by_customer), zone

        # sorted by p99_latency or median_latency, small pages walked with the cursor, over all the data in
        # UTC and over a range inside it in New York (its edges cut days: hours read there): every customer
        # in the order of the raw lines' figures (ties by id), each row equal to them
        inner = (end - dt.timedelta(days=26), end - dt.timedelta(days=2))
        for zone, (lo, hi) in (("UTC", (first, last)), ("America/New_York", inner)):
            tz = ZoneInfo(zone)
            inside = {c: [r for r in rows if lo <= r[0].astimezone(tz).date() <= hi] for c, rows in by_customer.items()}
            for sort in ("p99_latency", "median_latency"):
                whole = {c: figures(rows)[sort] for c, rows in inside.items() if rows}
                for order in ("desc", "asc"):
                    want = sorted(whole, key=lambda c: (-whole[c] if order == "desc" else whole[c], c))
                    params = {"from": str(lo), "to": str(hi), "tz": zone, "sort": sort, "order": order, "limit": "2"}
                    seen = []
                    while True:
                        page = api.get("/stats", params=params).json()
                        for c in page["customers"]:
                            check(c, inside[c["customer_id"]], f"{sort} {order} {zone} {c['customer_id']}")
                        seen += [c["customer_id"] for c in page["customers"]]
                        if page["next_cursor"] is None:
                            break
                        params["cursor"] = page["next_cursor"]
                    assert seen == want, (zone, sort, order)
