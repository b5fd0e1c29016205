"""Every customer's numbers over a range from the packed tables of the fleet-wide rollup points.

`GET /stats` needs count, failed, sum (and for SLO budgets server errors) of every customer. Summing
them in InfluxDB (`SUM(...) GROUP BY customer_id`) reads one series per customer and pays per series
and per shard (375–475 ms for 1,000 customers × 30 days of `rollups_1d` on the loaded 2-core machine).
The processor also writes, on each `*` point, the per-customer numbers of that identity-window
(`storage/fleet_table.py`), so the same answer is one series read plus a numpy pass here.

The tables are used only when they provably hold every request of the range: the `*` points' counts
must equal the sum of their tables (no point without a table or with an overflowing part) and the
ungrouped sum of every customer's points (data written before the `*` points existed lacks them).
Otherwise `None`, and the caller sums per customer in InfluxDB as before.

The tables are read, checked and decoded per window of their level, and with `KeptWindows` (which
follows the `writes` marks, like the day replica) a window's verified table is kept until a newer mark
overlaps it: a month's fleet answer then reads and decodes only the windows written since the last
answer (beside a live processor: today's), instead of every window's `*` points and the check that
sums every customer's points of the month (profiled: the largest part of a fleet answer's API CPU).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter

from logpulse.readmodel import influxql
from logpulse.readmodel.cache import LOOKBACK_NS, POLL_GAP_NS, TRUST_S
from logpulse.readmodel.counting import counted_read
from logpulse.readmodel.plan import Plan
from logpulse.storage import fleet_table
from logpulse.storage.influx import AsyncInfluxQuery, series_rows
from logpulse.storage.marks import ANY_CUSTOMER, Mark
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel

_FIELDS = ("count", *fleet_table.FIELDS)
SUMS = Counter(
    "logpulse_fleet_sums",
    "Reads of every customer's sums for a fleet answer, by source: the `*` points' tables, or (when a table "
    "did not hold every request, e.g. read while a processor was writing) every customer's points",
    ["source"],
)


@dataclass
class CustomerSums:
    """Per customer (sorted ids), the numbers of the range."""

    customers: list[str]
    count: np.ndarray
    failed: np.ndarray
    seconds: np.ndarray  # sum of durations
    server_errors: np.ndarray  # of the entries whose 5xx count is known
    unknown: np.ndarray  # entries without a 5xx count (aggregates restored from an older snapshot)


class KeptWindows:
    """Verified tables of windows, each kept until a `writes` mark newer than its read overlaps it.

    It follows the marks the answer cache polls (`AnswerCache.follow`) and is used only while they are
    polled (`trusted`). A read that a mark overlaps while it is in flight is not kept: the marks of
    the look-back are remembered per poll as one (newest mark, earliest, latest time) each."""

    MAX_WINDOWS = 20_000
    """Kept windows at most (~1,200 entries each: a few hundred MB at worst); past it all are dropped."""

    def __init__(self) -> None:
        self._kept: dict[RollupLevel, dict[int, tuple[fleet_table.Table, int]]] = {}  # level -> start -> (table, read)
        self._polls: list[tuple[int, int, int, int]] = []  # (poll start, newest mark, min time, max time)
        self._polled_ns: int | None = None

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()

    def trusted(self) -> bool:
        return self._polled_ns is not None and self.now_ns() - self._polled_ns <= TRUST_S * 1e9

    def marks_polled(self, started_ns: int, marks: list[Mark]) -> None:
        if self._polled_ns is not None and started_ns - self._polled_ns > POLL_GAP_NS:
            self._kept.clear()
        self._polled_ns = started_ns
        for customer, mark_ns, lo, hi in marks:
            if customer == ANY_CUSTOMER:
                self._kept.clear()
            for level, kept in self._kept.items():
                self._drop(kept, level.window_ns, mark_ns, lo, hi)
        self._polls = [p for p in self._polls if p[0] > started_ns - LOOKBACK_NS]
        if marks:
            self._polls.append(
                (started_ns, max(m[1] for m in marks), min(m[2] for m in marks), max(m[3] for m in marks))
            )

    @staticmethod
    def _drop(kept: dict[int, tuple[fleet_table.Table, int]], width: int, mark_ns: int, lo: int, hi: int) -> None:
        first, last = lo - lo % width, hi - hi % width
        starts = range(first, last + 1, width) if (last - first) // width < len(kept) else list(kept)
        for start in starts:
            one = kept.get(start)
            if one is not None and lo < start + width and hi >= start and mark_ns > one[1]:
                del kept[start]

    def get(self, level: RollupLevel, start: int) -> fleet_table.Table | None:
        one = self._kept.get(level, {}).get(start)
        return None if one is None else one[0]

    def put(self, level: RollupLevel, start: int, table: fleet_table.Table, read_ns: int) -> None:
        """Keep a window's table read from a query that started at read_ns, unless a mark applied since
        may overlap it."""
        end = start + level.window_ns
        if any(newest > read_ns and lo < end and hi >= start for _, newest, lo, hi in self._polls):
            return
        if sum(len(k) for k in self._kept.values()) >= self.MAX_WINDOWS:
            self._kept.clear()
        self._kept.setdefault(level, {})[start] = (table, read_ns)


async def customer_sums(
    client: AsyncInfluxQuery, p: Plan, levels: tuple[RollupLevel, ...], kept: KeptWindows | None = None
) -> CustomerSums | None:
    """Every customer's sums over the plan's runs from the `*` tables, or None if they are incomplete.

    A live processor writes a window's `*` point and its customers' points in separate requests, and
    InfluxDB stores a point's fields one by one, so a read racing a flush can find counts that
    disagree (2 of 30 fleet answers beside a processor writing every customer each second), and the
    caller's fallback sums every customer in InfluxDB (seconds for a month of 1,200). Tables found
    incomplete are therefore read once more before that."""
    found = await _read_sums(client, p, levels, kept)
    if found is None:
        found = await _read_sums(client, p, levels, kept)
    SUMS.labels("tables" if found is not None else "influxdb").inc()
    return found


async def _read_sums(
    client: AsyncInfluxQuery, p: Plan, levels: tuple[RollupLevel, ...], kept: KeptWindows | None
) -> CustomerSums | None:
    use = kept if kept is not None and kept.trusted() else None
    tables: list[fleet_table.Table] = []
    missing: dict[RollupLevel, list[int]] = {}
    for lvl in levels:
        for a, b in p.runs.get(lvl, []):
            for start in range(a, b, lvl.window_ns):
                table = use.get(lvl, start) if use is not None else None
                if table is None:
                    missing.setdefault(lvl, []).append(start)
                else:
                    tables.append(table)
    read_ns = KeptWindows.now_ns()
    read = await asyncio.gather(*(_read_windows(client, lvl, starts) for lvl, starts in missing.items()))
    for lvl, found in zip(missing, read, strict=True):
        if found is None:
            return None
        for start, table in found.items():
            tables.append(table)
            if use is not None:
                use.put(lvl, start, table, read_ns)
    return _summed(tables)


async def _read_windows(
    client: AsyncInfluxQuery, level: RollupLevel, starts: list[int]
) -> dict[int, fleet_table.Table] | None:
    """The level's windows' tables, each checked to hold every request of its window (None if one
    does not): contiguous windows are read by one statement, the check is summed per window."""
    ranges: list[tuple[int, int]] = []
    for start in starts:
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + level.window_ns)
        else:
            ranges.append((start, start + level.window_ns))
    res, checks = await asyncio.gather(
        client.query("; ".join(influxql.windows_statements(level, ranges, FLEET_CUSTOMER, _FIELDS))),
        client.query("; ".join(influxql.customers_count_statements(level, ranges))),
    )
    rows = await counted_read(client, res, level, FLEET_CUSTOMER, _FIELDS)
    fleet_count = dict.fromkeys(starts, 0)
    texts: dict[int, list[str]] = {start: [] for start in starts}
    for i, start in enumerate(rows.starts(level).tolist()):
        count = rows.cols["count"][i]
        parts = [rows.cols[f][i] for f in fleet_table.FIELDS if rows.cols[f][i]]
        if count and not parts:
            return None  # a `*` point without a table (written before tables existed)
        fleet_count[start] += int(count or 0)
        texts[start] += parts
    customers_count = dict.fromkeys(starts, 0)
    for r in checks:
        for _, row in series_rows(r):
            at = int(row["time"])
            customers_count[at] = customers_count.get(at, 0) + int(row.get("count") or 0)
    found: dict[int, fleet_table.Table] = {}
    for start in starts:
        if customers_count[start] != fleet_count[start]:
            return None
        try:
            table = fleet_table.decode_many(texts[start])
        except fleet_table.TableDecodeError:
            return None  # an overflowing part (tens of thousands of customers in one window)
        if int(table.count.sum()) != fleet_count[start]:
            return None
        found[start] = table
    return found


def _summed(tables: list[fleet_table.Table]) -> CustomerSums:
    """Every customer's sums over the windows' tables."""
    customers = [c for t in tables for c in t.customers]
    if not customers:
        return CustomerSums([], *(np.zeros(0, np.int64) for _ in range(5)))
    order = list(dict.fromkeys(customers))  # distinct ids, first-seen order (C loops, no call per id)
    index = {c: i for i, c in enumerate(order)}
    codes = np.fromiter(map(index.__getitem__, customers), np.int64, len(customers))
    n = len(order)

    def add(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    count, failed, server, sum_ns = (
        np.concatenate([getattr(t, f) for t in tables]) for f in ("count", "failed", "server_errors", "sum_ns")
    )
    known = server >= 0
    by_id = np.argsort(np.asarray(order, dtype=object))
    return CustomerSums(
        [order[i] for i in by_id],
        add(count).astype(np.int64)[by_id],
        add(failed).astype(np.int64)[by_id],
        (np.bincount(codes, weights=sum_ns, minlength=n) / 1e9)[by_id],
        add(np.where(known, server, 0)).astype(np.int64)[by_id],
        add(~known).astype(np.int64)[by_id],
    )


class TableReads:
    """One answer's table reads: the range and the SLO window are often the same plan (a 30-day range,
    a 30-day SLO window): read once, await twice."""

    def __init__(
        self, client: AsyncInfluxQuery, levels: tuple[RollupLevel, ...], kept: KeptWindows | None = None
    ) -> None:
        self.client = client
        self.levels = levels
        self.kept = kept
        self._reads: dict[tuple[tuple[str, tuple[tuple[int, int], ...]], ...], asyncio.Future[CustomerSums | None]] = {}

    def sums(self, p: Plan) -> asyncio.Future[CustomerSums | None]:
        key = tuple((lvl.measurement, tuple(runs)) for lvl, runs in p.runs.items() if runs)
        if key not in self._reads:
            self._reads[key] = asyncio.ensure_future(customer_sums(self.client, p, self.levels, self.kept))
        return self._reads[key]
