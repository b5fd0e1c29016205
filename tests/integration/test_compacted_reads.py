"""Readers leave the compacted points' `covers` out and read it only for windows that hold compacted points
and sources together (`readmodel/counting.py`): against a real influxd, every state a compaction pass, a
crash, late lines or a second ingest can leave in a window is counted exactly, and `covers` is asked
for only over the windows that need it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from logpulse.config import Settings
from logpulse.model import RollupPoint
from logpulse.readmodel import counting, influxql, row_sums
from logpulse.readmodel.counting import Rows
from logpulse.readmodel.day_replica import DayReplica
from logpulse.readmodel.plan import Who, plan_ranges
from logpulse.storage import compacted
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.influx import AsyncInfluxQuery, Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_LEVELS, ROLLUP_RP, rollup_line

LEVEL = ROLLUP_LEVELS[-1]
W = LEVEL.window_ns
FIRST = 20_758 * W  # 2026-11-01 UTC
FIELDS = ("count", "failed", "sum", "hist")


class RecordingQuery(AsyncInfluxQuery):
    """The API's InfluxDB client, remembering every request it sent."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.sent: list[str] = []

    async def query(self, q: str) -> list[dict[str, Any]]:
        self.sent.append(q)
        return await super().query(q)


def point(customer: str, time_ns: int, count: int) -> RollupPoint:
    hist = LatencyHistogram.from_values([0.01 * (1 + i % 7) for i in range(count)]).encode()
    return RollupPoint(LEVEL.measurement, customer, time_ns, W, count, 0, 0, count * 10_000_000, hist, ())


def source(customer: str, window: int, offset: int, count: int) -> str:
    return rollup_line(point(customer, FIRST + window * W + offset, count))


def generation(customer: str, window: int, gen: int, covered: dict[int, int], *, partial: bool = False) -> str:
    """A compacted point holding `covered` ({source offset: count}); `partial`: as seen while being
    written, its numbers there but not yet its histogram and `covers`."""
    p = point(customer, FIRST + window * W + gen, sum(covered.values()))
    if partial:
        return (
            f"{p.measurement},customer_id={customer},{compacted.TAG}={compacted.TAG_VALUE} count={p.count}i {p.time_ns}"
        )
    return compacted.compacted_line(p, compacted.encode_covers(list(covered), list(covered.values())))


A, B, LATE = 5_000_000, 9_000_000_000, 40_000_000_000  # source identities' offsets in their window
STATES = {
    # window: (lines, requests a reader must count, holds both kinds)
    0: ([source("c", 0, A, 3), source("c", 0, B, 4)], 7, False),  # never compacted
    1: ([generation("c", 1, 0, {A: 3, B: 4})], 7, False),  # compacted, sources deleted
    2: ([generation("c", 2, 0, {A: 3}), generation("c", 2, 1, {A: 3, B: 4})], 7, False),  # old generation left
    3: ([generation("c", 3, 0, {A: 3, B: 4}), generation("c", 3, 1, {A: 3, B: 4, LATE: 2}, partial=True)], 7, False),
    4: ([source("c", 4, A, 3), source("c", 4, B, 4), generation("c", 4, 0, {A: 3, B: 4})], 7, True),  # mid-pass
    5: ([generation("c", 5, 0, {A: 3, B: 4}), source("c", 5, LATE, 2)], 9, True),  # late lines after compaction
    6: ([generation("c", 6, 0, {A: 3, B: 4}), source("c", 6, A, 3), source("c", 6, LATE, 2)], 9, True),  # re-ingest
    7: (  # a newer generation being written beside a covered and a late source: the older one stands
        [
            generation("c", 7, 0, {A: 3, B: 4}),
            source("c", 7, B, 4),
            source("c", 7, LATE, 2),
            generation("c", 7, 1, {A: 3, B: 4, LATE: 2}, partial=True),
        ],
        9,
        True,
    ),
    8: ([source("d", 8, A, 5), generation("c", 8, 0, {A: 1})], 6, False),  # another customer's source: not mixed
}


@pytest.fixture()
def client(influx_settings: Settings) -> Iterator[RecordingQuery]:
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write([line for lines, _, _ in STATES.values() for line in lines], rp=ROLLUP_RP)
    writer.close()
    yield RecordingQuery(Connection.from_settings(influx_settings))


async def read(client: RecordingQuery, windows: list[int], who: Who, covers_from: int | None = None) -> Rows:
    """The counted rows of the windows, as readers read them (`covers` from `covers_from` on)."""
    ranges = [(FIRST + w * W, FIRST + (w + 1) * W) for w in windows]
    statements = influxql.windows_statements(LEVEL, ranges, who, FIELDS, covers_from=covers_from)
    return await counting.counted_read(client, await client.query("; ".join(statements)), LEVEL, who, FIELDS)


def counted_per_window(rows: Rows) -> dict[int, int]:
    out: dict[int, int] = {}
    for start, n in zip(rows.starts(LEVEL).tolist(), rows.cols["count"], strict=True):
        out[(start - FIRST) // W] = out.get((start - FIRST) // W, 0) + n
    return out


@pytest.mark.parametrize("who", ["c", ["c", "d"], None])
def test_every_state_counted_exactly_and_covers_read_only_where_both_kinds_are(
    client: RecordingQuery, who: Who
) -> None:
    async def scenario() -> None:
        try:
            quiet = [w for w, (_, _, mixed) in STATES.items() if not mixed]
            got = counted_per_window(await read(client, quiet, who))
            assert len(client.sent) == 1 and compacted.FIELD not in client.sent[0]  # no window needs `covers`
            want = {w: n for w, (_, n, _) in STATES.items() if w in quiet}
            if who == "c":
                want[8] = 1  # customer d's source is not read
            assert got == want

            client.sent.clear()
            got = counted_per_window(await read(client, list(STATES), who))
            want = {w: n for w, (_, n, _) in STATES.items()} | ({8: 1} if who == "c" else {})
            assert got == want
            assert len(client.sent) == 2 and compacted.FIELD in client.sent[1]
            mixed = [w for w, (_, _, m) in STATES.items() if m]  # windows 4-7: one range, one statement
            assert client.sent[1].count("SELECT") == 1
            assert f"time >= {FIRST + min(mixed) * W} AND time < {FIRST + (max(mixed) + 1) * W}" in client.sent[1]
        finally:
            await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("who", ["c", ["c", "d"], None])
@pytest.mark.parametrize("first_open", [0, 5, 6, 9])
def test_windows_that_can_still_be_open_are_counted_from_the_first_read(
    client: RecordingQuery, who: Who, first_open: int
) -> None:
    """`covers` read at once from the first open window on: every state counted as exactly, in one request
    when every mixed window is among the open ones, a second one re-reading only the closed mixed ones."""

    async def scenario() -> None:
        try:
            got = counted_per_window(await read(client, list(STATES), who, FIRST + first_open * W))
            assert got == {w: n for w, (_, n, _) in STATES.items()} | ({8: 1} if who == "c" else {})
            for w, statement in enumerate(client.sent[0].split("; ")):  # one statement per window
                assert f"time >= {FIRST + w * W} AND" in statement
                assert (f'"{compacted.FIELD}"' in statement) == (w >= first_open)
            closed_mixed = [w for w, (_, _, mixed) in STATES.items() if mixed and w < first_open]
            assert len(client.sent) == 1 + bool(closed_mixed)
            if closed_mixed:  # read again as one range
                a, b = FIRST + min(closed_mixed) * W, FIRST + (max(closed_mixed) + 1) * W
                assert f"time >= {a} AND time < {b}" in client.sent[1] and client.sent[1].count("SELECT") == 1
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_windows_statements_split_a_range_at_the_first_open_window() -> None:
    a, cut, b = FIRST, FIRST + 3 * W, FIRST + 5 * W
    plain, covered = influxql.windows_statements(LEVEL, [(a, b)], "c", FIELDS, covers_from=cut)
    assert f"time >= {a} AND time < {cut}" in plain and compacted.FIELD not in plain
    assert f"time >= {cut} AND time < {b}" in covered and f'"{compacted.FIELD}"' in covered
    assert influxql.windows_statements(LEVEL, [(a, b)], "c", FIELDS, covers_from=b) == [plain.replace(str(cut), str(b))]
    (whole,) = influxql.windows_statements(LEVEL, [(a, b)], "c", FIELDS, covers_from=a)
    assert whole == covered.replace(str(cut), str(a))
    assert influxql.windows_statements(LEVEL, [(a, b)], "c", FIELDS) == [plain.replace(str(cut), str(b))]


def test_open_windows_begin_where_compaction_stops_calling_them_closed() -> None:
    now = FIRST + 10 * W + 7
    assert counting.OpenWindows(0).first(LEVEL, now) == FIRST + 10 * W  # the window under way
    assert counting.OpenWindows(2 * W).first(LEVEL, now) == FIRST + 8 * W
    assert counting.OpenWindows(2 * W + 8).first(LEVEL, now) == FIRST + 7 * W


def test_reread_ranges_join_adjacent_windows_and_bridge_the_narrowest_gaps() -> None:
    assert counting.reread_ranges([0, W, 3 * W], LEVEL) == [(0, 2 * W), (3 * W, 4 * W)]
    n = counting.MAX_REREAD_STATEMENTS
    starts = [i * 2 * W for i in range(n)] + [100 * n * W]  # n + 1 runs; the last gap the widest
    ranges = counting.reread_ranges(starts, LEVEL)
    assert len(ranges) == n and ranges[-1] == (100 * n * W, (100 * n + 1) * W)
    assert all(any(a <= s < b for a, b in ranges) for s in starts)


def test_holds_compacted_finds_compacted_points_only(client: RecordingQuery) -> None:
    async def scenario() -> None:
        try:
            sources_only = plan_ranges([(FIRST, FIRST + W)], (LEVEL,))
            with_compacted = plan_ranges([(FIRST, FIRST + 2 * W)], (LEVEL,))
            assert not await row_sums.holds_compacted(client, sources_only, (LEVEL,))
            assert await row_sums.holds_compacted(client, with_compacted, (LEVEL,))
            assert all(compacted.FIELD not in q for q in client.sent)
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_the_fleet_replica_loads_every_state_counted_exactly(client: RecordingQuery) -> None:
    """The fleet's day replica loads days through the same reader: each window once, whatever stage a
    compaction left it in; its histogram entries add up to the counted requests."""

    async def scenario() -> None:
        try:
            replica = DayReplica(client, LEVEL, 10**6)
            replica.marks_polled(replica.now_ns(), [])  # as after a successful poll of the marks
            tables = await replica.tables([FIRST + w * W for w in STATES])
            assert tables is not None
            got = {
                w: {replica.names[c]: n for c, n in zip(t.codes.tolist(), t.count.tolist(), strict=True)}
                for w, t in zip(STATES, tables, strict=True)
            }
            want = {w: {"c": n} for w, (_, n, _) in STATES.items()} | {8: {"d": 5, "c": 1}}
            assert got == want
            for t in tables:
                assert t.coarse.sum(axis=1).tolist() == t.count.tolist() and t.exact.all()
        finally:
            await client.aclose()

    asyncio.run(scenario())
