"""Local intervals, the level plan, fleet cursors and the 4xx rules of the rollup routes (no InfluxDB)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.api.app import create_app
from logpulse.api.errors import BadRequest
from logpulse.config import Settings
from logpulse.readmodel.localtime import NS, WINDOW_NS, interval_starts, iso_local, iso_locals, local_midnight_ns
from logpulse.readmodel.merge import Decoded, merge
from logpulse.readmodel.paging import decode_cursor, encode_cursor, sort_rows
from logpulse.readmodel.plan import plan
from logpulse.readmodel.windows import Windows
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import RollupLevel

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham")


def brute_force_starts(start_ns: int, end_ns: int, interval: str, tz: ZoneInfo) -> list[int]:
    """Every window whose local interval differs from the previous window's, by asking zoneinfo."""

    def key(t: int) -> tuple[object, ...]:
        local = dt.datetime.fromtimestamp(t // NS, tz)
        if interval == "1d":
            return (local.date(),)
        if interval == "1h":
            return (local.date(), local.hour, local.utcoffset())
        return (t,)

    out, prev = [], None
    for t in range(start_ns, end_ns, WINDOW_NS):
        k = key(t)
        if k != prev:
            out.append(t)
        prev = k
    return out


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("interval", ["15m", "1h", "1d"])
def test_interval_starts_match_zoneinfo_across_dst(zone: str, interval: str) -> None:
    tz = ZoneInfo(zone)
    for first in (dt.date(2026, 3, 25), dt.date(2026, 9, 22), dt.date(2026, 10, 22)):  # DST changes both ways
        start = local_midnight_ns(first, tz)
        end = local_midnight_ns(first + dt.timedelta(days=14), tz)
        starts = interval_starts(start, end, interval, tz)
        assert starts.tolist() == brute_force_starts(start, end, interval, tz)
        assert iso_locals(starts, tz) == [iso_local(t, tz) for t in starts.tolist()]  # the series' start texts


def test_dst_days_have_23_and_25_hours() -> None:
    ny = ZoneInfo("America/New_York")
    days = interval_starts(
        local_midnight_ns(dt.date(2026, 3, 7), ny), local_midnight_ns(dt.date(2026, 3, 10), ny), "1d", ny
    )
    assert (np.diff(days) // (3600 * NS)).tolist() == [24, 23]
    fall = interval_starts(
        local_midnight_ns(dt.date(2026, 11, 1), ny), local_midnight_ns(dt.date(2026, 11, 2), ny), "1h", ny
    )
    assert len(fall) == 25


LEVELS = tuple(RollupLevel(f"r{s}", s * NS, 1, 4096) for s in (86_400, 3600, 900))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4 * 96), min_size=2, max_size=8, unique=True))
def test_plan_covers_each_interval_exactly_with_aligned_windows(quarter_hours: list[int]) -> None:
    bounds = np.asarray(sorted(quarter_hours), dtype=np.int64) * WINDOW_NS + 1_790_000_000 // 86_400 * 86_400 * NS
    p = plan(bounds, LEVELS)
    covered: list[tuple[int, int]] = []
    for level in LEVELS:
        for a, b in p.runs[level]:
            assert a % level.window_ns == 0 and b % level.window_ns == 0 and a < b
            covered.append((a, b))
            inside = bounds[(bounds > a) & (bounds < b)]  # a run may span bounds only on window edges
            assert all(x % level.window_ns == 0 for x in inside.tolist())
    covered.sort()
    assert covered[0][0] == bounds[0] and covered[-1][1] == bounds[-1]
    assert all(x[1] == y[0] for x, y in itertools.pairwise(covered))  # no gap, no overlap
    for level in LEVELS:  # read ranges may bridge small gaps; keep() drops the windows in them again
        for a, b in p.ranges(level):
            windows = np.arange(a, b, level.window_ns, dtype=np.int64)
            kept = windows[p.keep(level, windows)].tolist()
            assert kept == [w for w in windows.tolist() if any(x <= w < y for x, y in p.runs[level])]


def test_a_utc_month_reads_one_row_per_day() -> None:
    utc = ZoneInfo("UTC")
    bounds = np.asarray([local_midnight_ns(dt.date(2026, 10, 1) + dt.timedelta(days=i), utc) for i in range(31)])
    p = plan(bounds, LEVELS)
    assert p.runs[LEVELS[0]] == [(int(bounds[0]), int(bounds[-1]))] and not p.runs[LEVELS[1]] and not p.runs[LEVELS[2]]


def test_fleet_cursor_round_trip_and_mismatch() -> None:
    rows = [{"customer_id": c, "p99_latency": v} for c, v in (("a", 0.5), ("b", 0.9), ("c", 0.5), ("d", None))]
    ordered = sort_rows(rows, "p99_latency", "desc")
    assert [r["customer_id"] for r in ordered] == ["b", "a", "c", "d"]  # null last, descending too
    assert [r["customer_id"] for r in sort_rows(rows, "p99_latency", "asc")] == ["a", "c", "b", "d"]
    cursor = encode_cursor(ordered[0], "p99_latency", "desc")
    assert decode_cursor(cursor, "p99_latency", "desc") == (0, -0.9, "b")
    with pytest.raises(BadRequest, match="'cursor' belongs to sort=p99_latency"):
        decode_cursor(cursor, "uptime", "desc")
    with pytest.raises(BadRequest, match="invalid 'cursor'"):
        decode_cursor("%%%", "uptime", "desc")


@pytest.fixture()
def client() -> Iterator[TestClient]:
    # port 9 refuses connections: every answer below must come from validation, before any query
    settings = Settings(_env_file=None, influxdb_url="http://127.0.0.1:9", stats_cache_s=0)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client


@pytest.mark.parametrize(
    "url, words",
    [
        ("/customers/a/series?from=2026-11-01&interval=5m", "unknown 'interval'"),
        ("/customers/a/series?from=2026-11-02&to=2026-11-01", "'from' (2026-11-02) is not before 'to'"),
        ("/customers/a/series?from=2026-11-01T10:00:00Z&to=2026-11-01T10:00:00Z", "is not before 'to'"),
        ("/customers/a/series?from=2026-01-01&to=2026-12-31&interval=15m", "more than 10,000"),
        ("/customers/a/series?from=2026-11-01T10:07:00Z", "'from' '2026-11-01T10:07:00Z' is not on a 15-minute"),
        ("/customers/a/series?from=2026-11-01T10:00:00", "'from' '2026-11-01T10:00:00': an RFC 3339 time needs"),
        ("/customers/a/series?from=yesterday", "invalid 'from'"),
        ("/customers/a/series", "missing 'from'"),
        ("/customers/a/series?from=2026-11-01&tz=Mars/Base", "unknown time zone"),
        ("/customers/a%20b/series?from=2026-11-01", "invalid customer id"),
        ("/stats?from=2026-11-01&sort=p50", "unknown 'sort' key 'p50'"),
        ("/stats?from=2026-11-01&order=up", "unknown 'order'"),
        ("/stats?from=2026-11-02&to=2026-11-01", "'from' (2026-11-02) is after 'to'"),
        ("/stats?from=2026-11-01&limit=1001", "invalid 'limit'"),
        ("/stats?from=2026-11-01&cursor=!!", "invalid 'cursor'"),
        ("/customers/a/stats?from=2026-11-02&to=2026-11-01", "is after 'to'"),
        ("/customers/a/stats?from=2026-11-01&exact=maybe", "invalid 'exact'"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(client: TestClient, url: str, words: str) -> None:
    r = client.get(url)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.lists(st.integers(0, 60_000) | st.integers(200, 240), min_size=1, max_size=40),
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    ),
    st.booleans(),
)
def test_grouped_ranks_equal_one_histogram_per_group(rows: list[tuple[int, list[int], bool]], in_order: bool) -> None:
    """merge() ranks many groups at once (dense table for narrow values, else by sorting: everything, or
    only the groups out of order when rows come in group order, as a read of days in time order); each
    group equals merge_many of its rows, exact or approximate (a 0.1 ms duration turns its row approximate)."""
    if in_order:
        rows = sorted(rows, key=lambda row: row[0])
    texts = [
        LatencyHistogram.from_text([f"{v / 1000:.3f}" for v in ms] + (["0.0001"] if fine else [])).encode()
        for _, ms, fine in rows
    ]
    counts = np.asarray([len(ms) + fine for _, ms, fine in rows], dtype=np.int64)
    n = len(rows)
    w = Windows(np.zeros(n, np.int64), counts, np.zeros(n, np.int64), np.zeros(n), list(texts), [""] * n)
    group = np.asarray([g for g, _, _ in rows], dtype=np.int64)
    m = merge(w, Decoded.of(list(texts)), group, 6)
    for g in range(6):
        mine = [t for t, gi in zip(texts, group.tolist(), strict=True) if gi == g]
        if not mine:
            assert m.total[g] == 0
            continue
        h = LatencyHistogram.merge_many(mine)
        assert (m.median[g], m.p99[g], bool(m.exact[g])) == (h.median(), h.percentile(99), h.exact)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 60_000) | st.integers(200, 240), min_size=1, max_size=40), min_size=1, max_size=12
    ),
    st.integers(0, 3),
)
def test_ranks_of_rows_already_in_group_order(rows: list[list[int]], skipped: int) -> None:
    """One row per group, groups in order (a month of compacted days: ranked without sorting the
    entries again), with `skipped` empty groups first: each group equals its own histogram, and the
    whole equals merge_many of every row."""
    texts = [LatencyHistogram.from_text([f"{v / 1000:.3f}" for v in ms]).encode() for ms in rows]
    n = len(rows)
    counts = np.asarray([len(ms) for ms in rows], dtype=np.int64)
    w = Windows(np.zeros(n, np.int64), counts, np.zeros(n, np.int64), np.zeros(n), list(texts), [""] * n)
    d = Decoded.of(list(texts))
    per_row = merge(w, d, np.arange(skipped, skipped + n, dtype=np.int64), skipped + n)
    whole = merge(w, d, np.zeros(n, np.int64), 1)
    for g in range(skipped):
        assert per_row.total[g] == 0 and per_row.median[g] is None
    for i, text in enumerate(texts):
        h = LatencyHistogram.decode(text)
        assert (per_row.median[skipped + i], per_row.p99[skipped + i]) == (h.median(), h.percentile(99))
    h = LatencyHistogram.merge_many(texts)
    assert (whole.median[0], whole.p99[0], bool(whole.exact[0])) == (h.median(), h.percentile(99), h.exact)
