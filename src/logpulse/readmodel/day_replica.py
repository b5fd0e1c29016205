"""An exact in-memory replica of every customer's whole-day (`rollups_1d`) histograms, kept exact by
the `writes` marks.

The fleet sorted by median or p99 needs every customer's histograms over the range. InfluxDB emits
them slowly (11.8 MB of strings for 1,200 customers × 30 days: 1.2–2.4 s) and decoding them costs
another ~0.9 s of CPU, for data that mostly never changes (past days). So the API keeps the decoded
days (`day_tables.DayTable`), loaded on the first request that needs them — one read per run of
missing days, every customer at once — and reused.

Exactness follows the answer cache's rule (`cache.AnswerCache`): the sink writes a mark (customer,
[min_time, max_time], time of writing) after InfluxDB acknowledged data, and the API polls them.
A mark drops (makes *dirty*) a customer's row of every loaded day its range overlaps when the mark is
newer than that row's load start: a load that started before a mark can have missed its data, a load
that started after it saw it. Dirty rows are read again on the next request (that day's listed
customers, or the whole day when many). Marks seen while a load is in flight are kept and applied to
its rows when it lands. The replica is used only while polls succeed (the last one started at most
`cache.TRUST_S` ago); two successful polls further apart than half the marks' look-back may have
missed marks between them, so the replica is then emptied.

Compaction rewrites points without changing their numbers and writes no marks: every load goes
through `counting.counted_read`, which counts each window once whatever stage a compaction is at.

Memory: 12 bytes per entry (a sorted int64 of customer and millisecond, an int32 count) and
N_BINS × 4 bytes per customer-day of coarse counts; `max_entries` bounds the entries, beyond it the
caller reads InfluxDB as without a replica.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Counter, Gauge

from logpulse.readmodel import influxql
from logpulse.readmodel.cache import LOOKBACK_NS, TRUST_S, Mark
from logpulse.readmodel.counting import Rows, counted_read
from logpulse.readmodel.day_tables import DayTable
from logpulse.storage.influx import AsyncInfluxQuery
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel

DAY_NS = 86_400 * 10**9
FIELDS = ("count", "hist")
PARTIAL_MAX = 64
"""A day with at most this many dirty customers re-reads them by name; with more, the whole day."""
POLL_GAP_NS = LOOKBACK_NS // 2
"""Successful polls further apart than this may have missed marks (a mark becomes visible up to a few
seconds after its timestamp, and a poll reads LOOKBACK_NS back)."""

ANSWERS = Counter(
    "logpulse_fleet_quantile_answers",
    "Fleet answers sorted by median or p99, by where their whole days came from (replica or influxdb)",
    ["source"],
)
DAYS_READ = Counter("logpulse_fleet_replica_days_read", "Days read into the fleet's replica", ["scope"])
ENTRIES = Gauge("logpulse_fleet_replica_entries", "Histogram entries held by the fleet's replica")
TRUSTED = Gauge("logpulse_fleet_replica_trusted", "1 while the replica follows the writes marks (polls succeed)")


@dataclass
class _Day:
    table: DayTable
    loaded_ns: int  # when the read of the whole day started
    reloaded_ns: dict[int, int] = field(default_factory=dict)  # customer code -> start of its re-read
    dirty: set[str] = field(default_factory=set)
    used_ns: int = 0

    def loaded_at(self, code: int | None) -> int:
        return self.loaded_ns if code is None else self.reloaded_ns.get(code, self.loaded_ns)


class DayReplica:
    """Decoded whole-day histograms of every customer, by 1d window start (module docstring)."""

    def __init__(self, client: AsyncInfluxQuery, level: RollupLevel, max_entries: int) -> None:
        if level.window_ns != DAY_NS:
            raise ValueError(f"the replica holds whole days, not {level.measurement} windows")
        self.client = client
        self.level = level
        self.max_entries = max_entries
        self.names: list[str] = []
        self._codes: dict[str, int] = {}
        self._days: dict[int, _Day] = {}
        self._lock = asyncio.Lock()
        self._polled_ns: int | None = None
        self._epoch = 0  # advanced when the replica is emptied: loads in flight then land nowhere
        self._inflight: list[int] = []  # start times of loads in flight
        self._seen: list[Mark] = []  # marks polled while loads are in flight
        self._entries_per_day = 0.0  # the last measured average, to refuse day sets over the cap unread

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()

    # ----- marks ----------------------------------------------------------------------------

    def marks_polled(self, started_ns: int, marks: list[Mark]) -> None:
        """A successful poll that started at started_ns found these marks."""
        if self._polled_ns is not None and started_ns - self._polled_ns > POLL_GAP_NS:
            self.clear()
        self._polled_ns = started_ns
        TRUSTED.set(1)
        for mark in marks:
            self._dirty(mark, self._days)
        if self._inflight:
            self._seen.extend(marks)

    def trusted(self) -> bool:
        trusted = self._polled_ns is not None and self.now_ns() - self._polled_ns <= TRUST_S * 1e9
        TRUSTED.set(int(trusted))
        return trusted

    def clear(self) -> None:
        self._days.clear()
        self._epoch += 1
        ENTRIES.set(0)

    def _dirty(self, mark: Mark, days: dict[int, _Day], since_ns: int | None = None) -> None:
        """Mark the customer's rows of the days the mark overlaps dirty, where the mark is newer than the
        row's load (or than since_ns, for rows of a load that started then)."""
        customer, mark_ns, lo, hi = mark
        first, last = lo - lo % DAY_NS, hi - hi % DAY_NS
        starts = range(first, last + 1, DAY_NS) if (last - first) // DAY_NS < len(days) else list(days)
        code = self._codes.get(customer)
        for start in starts:
            day = days.get(start)
            if day is None or not (lo < start + DAY_NS and hi >= start):
                continue
            if mark_ns > (day.loaded_at(code) if since_ns is None else since_ns):
                day.dirty.add(customer)

    # ----- reading --------------------------------------------------------------------------

    def code(self, customer: str) -> int:
        found = self._codes.get(customer)
        if found is None:
            found = self._codes[customer] = len(self.names)
            self.names.append(customer)
        return found

    @property
    def codes(self) -> dict[str, int]:
        return self._codes

    @property
    def entries(self) -> int:
        return sum(d.table.entries for d in self._days.values())

    async def tables(self, day_starts: list[int]) -> list[DayTable] | None:
        """The tables of these days (1d window starts), read where missing or dirty; None when the
        replica may not be trusted or the days do not fit in `max_entries`."""
        if not self.trusted() or not day_starts:
            return None
        if self._entries_per_day * len(day_starts) > self.max_entries:
            return None
        async with self._lock:
            epoch = self._epoch
            missing = [d for d in day_starts if d not in self._days]
            dirty = {d: self._days[d] for d in day_starts if d in self._days and self._days[d].dirty}
            whole = missing + [d for d, day in dirty.items() if len(day.dirty) > PARTIAL_MAX]
            partial = {d: day for d, day in dirty.items() if len(day.dirty) <= PARTIAL_MAX}
            await asyncio.gather(
                self._load_days(whole, epoch), *(self._reload(d, day, epoch) for d, day in partial.items())
            )
            if epoch != self._epoch or not self.trusted():
                return None
            found = [day for d in day_starts if (day := self._days.get(d)) is not None]
            if len(found) < len(day_starts):
                return None
            now = self.now_ns()
            for day in found:
                day.used_ns = now
            self._entries_per_day = self.entries / max(len(self._days), 1)
            fits = self._fit(set(day_starts))
            ENTRIES.set(self.entries)
            return [day.table for day in found] if fits else None

    def _fit(self, needed: set[int]) -> bool:
        """Evict the least recently used days not needed now until the entries fit; False if the
        needed days alone do not (they are dropped too: the caller reads InfluxDB)."""
        total = self.entries
        for start in sorted((d for d in self._days if d not in needed), key=lambda d: self._days[d].used_ns):
            if total <= self.max_entries:
                break
            total -= self._days.pop(start).table.entries
        if total <= self.max_entries:
            return True
        for start in needed:
            self._days.pop(start, None)
        return False

    async def _read(self, ranges: list[tuple[int, int]], who: list[str] | None) -> tuple[int, dict[int, DayTable]]:
        """(start of the read, {day start: table}) of the days in `ranges` for `who` (None: everyone)."""
        started = self.now_ns()
        self._inflight.append(started)
        try:
            statements = influxql.windows_statements(self.level, ranges, who, FIELDS)
            results = await self.client.query("; ".join(statements))
            rows = await counted_read(self.client, results, self.level, who, FIELDS)
            tables = await self._tables(rows, ranges)
        finally:
            self._inflight.remove(started)
        return started, tables

    async def _tables(self, rows: Rows, ranges: list[tuple[int, int]]) -> dict[int, DayTable]:
        """The rows (read for `ranges`) as one table per day, `*` (the fleet-wide points) left out."""
        keep = np.asarray([c != FLEET_CUSTOMER for c in rows.customers], bool)
        rows = rows.take(keep) if len(rows) else rows
        starts = rows.starts(self.level)
        codes = np.asarray([self.code(c) for c in rows.customers], np.int64)
        counts = np.asarray([n or 0 for n in rows.cols["count"]], np.int64)
        texts: list[str | None] = rows.cols["hist"]

        def build() -> dict[int, DayTable]:
            tables: dict[int, DayTable] = {}
            for a, b in ranges:
                for start in range(a, b, DAY_NS):
                    idx = np.flatnonzero(starts == start)
                    tables[start] = DayTable.build(codes[idx], counts[idx], [texts[i] for i in idx.tolist()])
            return tables

        # decoding a month of every customer takes seconds: off the event loop, so that the marks' poll
        # (and other answers) keep running meanwhile
        return await asyncio.to_thread(build)

    def _marks_since(self, started: int) -> list[Mark]:
        """The marks polled during a load that started then (newer than it); the log is dropped when no
        load is in flight any more."""
        found = [m for m in self._seen if m[1] > started]
        if not self._inflight:
            self._seen.clear()
        return found

    async def _load_days(self, days: list[int], epoch: int) -> None:
        if not days:
            return
        ranges: list[tuple[int, int]] = []
        for d in sorted(days):
            if ranges and ranges[-1][1] == d:
                ranges[-1] = (ranges[-1][0], d + DAY_NS)
            else:
                ranges.append((d, d + DAY_NS))
        started, tables = await self._read(ranges, None)
        DAYS_READ.labels("whole").inc(len(days))
        if epoch != self._epoch:
            return
        loaded = {d: _Day(t, started) for d, t in tables.items()}
        for mark in self._marks_since(started):
            self._dirty(mark, loaded, since_ns=started)
        self._days.update(loaded)

    async def _reload(self, start: int, day: _Day, epoch: int) -> None:
        """Read a day's dirty customers again and replace their rows."""
        names = sorted(day.dirty)
        day.dirty = set()
        try:
            started, tables = await self._read([(start, start + DAY_NS)], names)
        except BaseException:
            day.dirty.update(names)
            raise
        DAYS_READ.labels("customers").inc()
        if epoch != self._epoch or self._days.get(start) is not day:
            return
        codes = np.asarray([self.code(c) for c in names], np.int64)
        day.table = DayTable.join(day.table.without(codes), tables[start])
        day.reloaded_ns.update(dict.fromkeys(codes.tolist(), started))
        for mark in self._marks_since(started):
            if mark[0] in names:
                self._dirty(mark, {start: day}, since_ns=started)
