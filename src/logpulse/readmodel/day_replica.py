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
that started after it saw it. Dirty rows are read again on the next request (that day's dirty
customers by name, or the whole day when nearly all are). Marks seen while a load is in flight are
kept and applied to its rows when it lands. The replica is used only while polls succeed (the last
one started at most `cache.TRUST_S` ago); two successful polls further apart than half the marks'
look-back may have missed marks between them, so the replica is then emptied.

A mark a poll sees half-written (InfluxDB 1.x stores a point's fields one by one: one of its two
times missing) would drop its customer's rows of every day. The replica waits one poll for it, as
for a mark not yet visible, and applies it as covering every time only if that poll does not show
it whole: beside a live processor such marks came about once a poll, each re-reading a month of a
dozen customers and keeping every day changing.

While a processor writes, some tables change on every answer (today's) and the rest do not: the
ranking (`day_tables.quantiles`, its cost grows with the number of tables) then takes the tables
changed within HOT_S one by one beside one table folded from the others (`DayTable.fold`, built in
the background once per set of unchanged tables; until it is there, every table is ranked).

The hours (and quarter-hours) of partial local days at a range's edges — a zone whose midnight is not
UTC's — are held the same way, one table per edge interval, read through the caller's reader (the
read model's plan over the finer levels) and followed by the same marks.

Compaction rewrites points without changing their numbers and writes no marks: every load goes
through `counting.counted_read`, which counts each window once whatever stage a compaction is at.

Memory: 12 bytes per entry (a sorted int64 of customer and millisecond, an int32 count) and
N_BINS × 4 bytes per customer-day of coarse counts; `max_entries` bounds the entries, beyond it the
caller reads InfluxDB as without a replica. A fold holds fewer entries than its tables (a customer's
days share milliseconds: 8.0 M entries of 29 days fold into ~1.5 M) and is built only while the
tables and folds held stay within `max_entries`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Counter, Gauge

from logpulse.readmodel import influxql
from logpulse.readmodel.cache import POLL_GAP_NS, TRUST_S
from logpulse.readmodel.counting import adjacent_runs, counted_read
from logpulse.readmodel.day_tables import DayTable, Quantiles, quantiles
from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.windows import Windows
from logpulse.storage.influx import AsyncInfluxQuery
from logpulse.storage.marks import ANY_CUSTOMER, EVERY_TIME, Mark
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel

log = logging.getLogger(__name__)
DAY_NS = 86_400 * 10**9
FIELDS = ("count", "hist")
WHOLE_SHARE = 0.9
"""A table whose dirty customers are more than this share of its customers is read again whole; fewer
are read by name (`influxql`: one regular expression per 500 ids), which costs InfluxDB per customer
read as a whole read does."""
HOT_S = 60.0
"""A table read again (changed) within this long is ranked on its own; the others of a range are
ranked as one table folded from them (`DayTable.fold`), built in the background once per set."""

ANSWERS = Counter(
    "logpulse_fleet_quantile_answers",
    "Fleet answers sorted by median or p99, by where their whole days came from (replica or influxdb)",
    ["source"],
)
READS = Counter(
    "logpulse_fleet_replica_reads",
    "Tables read into the fleet's replica: whole days, edge intervals, or a table's changed customers",
    ["kind"],
)
FOLDS = Counter(
    "logpulse_fleet_replica_folds", "Sets of tables that no longer change folded into one for ranking (DayTable.fold)"
)
ENTRIES = Gauge("logpulse_fleet_replica_entries", "Histogram entries held by the fleet's replica")
TRUSTED = Gauge("logpulse_fleet_replica_trusted", "1 while the replica follows the writes marks (polls succeed)")


_VERSIONS = itertools.count()
RANKED_KEPT = 8
"""Rankings kept per set of table versions (a few ranges in use at once)."""
FOLDS_KEPT = 2
"""Folds kept (`HOT_S`): two ranges in use at once do not fold in turn."""
Key = tuple[int, int]
"""[start, end) UTC ns of a table: a whole 1d window, or an edge interval of finer windows."""
EdgeReader = Callable[[Key, list[str] | None], Awaitable[Windows]]
"""Reads an edge interval's rows of the listed customers (None: everyone), with count and hist."""


@dataclass
class _Held:
    table: DayTable
    loaded_ns: int  # when the read of the whole interval started
    reloaded_ns: dict[int, int] = field(default_factory=dict)  # customer code -> start of its re-read
    dirty: set[str] = field(default_factory=set)
    used_ns: int = 0
    version: int = field(default_factory=lambda: next(_VERSIONS))  # changes whenever `table` does
    changed_ns: int = 0  # when it was last read again after its first load (0: never)

    def rereads_whole(self) -> bool:
        return len(self.dirty) > WHOLE_SHARE * len(self.table.codes)

    def loaded_at(self, code: int | None) -> int:
        return self.loaded_ns if code is None else self.reloaded_ns.get(code, self.loaded_ns)


class DayReplica:
    """Decoded histograms of every customer by whole day (and edge interval); module docstring."""

    def __init__(self, client: AsyncInfluxQuery, level: RollupLevel, max_entries: int) -> None:
        if level.window_ns != DAY_NS:
            raise ValueError(f"the replica holds whole days, not {level.measurement} windows")
        self.client = client
        self.level = level
        self.max_entries = max_entries
        self.names: list[str] = []
        self._codes: dict[str, int] = {}
        self._held: dict[Key, _Held] = {}
        self._edges: set[Key] = set()  # the keys of `_held` that are not whole days
        self._lock = asyncio.Lock()
        self._polled_ns: int | None = None
        self._restart_ns = 0  # the newest restart mark acted on
        self._epoch = 0  # advanced when the replica is emptied: loads in flight then land nowhere
        self._inflight: list[int] = []  # start times of loads in flight
        self._seen: list[Mark] = []  # marks polled while loads are in flight
        self._half: list[Mark] = []  # marks the last poll saw half-written (`cache._mark`), waiting for it
        self._entries_per_day = 0.0  # the last measured average, to refuse day sets over the cap unread
        self._found: tuple[tuple[Key, int], ...] = ()  # (key, version) of the last `tables` answer
        self._ranked: dict[tuple[tuple[Key, int], ...], Quantiles] = {}
        self._folds: dict[tuple[tuple[Key, int], ...], DayTable] = {}  # by the (key, version) folded
        self._folding: asyncio.Task[None] | None = None

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
        for mark in marks:  # a writer restarted: anything it wrote may have gone unmarked
            if mark[0] == ANY_CUSTOMER and mark[1] > self._restart_ns:
                self._restart_ns = mark[1]
                self.clear()
        marks = [m for m in marks if m[0] != ANY_CUSTOMER]  # a restart mark has no times by design
        whole = {(m[0], m[1]) for m in marks if (m[2], m[3]) != EVERY_TIME}
        waited = {(m[0], m[1]) for m in self._half}
        applied = [m for m in marks if (m[0], m[1]) in whole]
        applied += [m for m in self._half if (m[0], m[1]) not in whole]  # still not whole: every time
        self._half = [m for m in marks if (m[0], m[1]) not in whole and (m[0], m[1]) not in waited]
        for mark in applied:
            self._dirty(mark, self._held)
        if self._inflight:
            self._seen.extend(applied)

    def trusted(self) -> bool:
        trusted = self._polled_ns is not None and self.now_ns() - self._polled_ns <= TRUST_S * 1e9
        TRUSTED.set(int(trusted))
        return trusted

    def clear(self) -> None:
        self._ranked.clear()
        self._folds.clear()
        self._half = []
        self._held.clear()
        self._edges.clear()
        self._epoch += 1
        ENTRIES.set(0)

    def _dirty(self, mark: Mark, held: dict[Key, _Held], since_ns: int | None = None) -> None:
        """Mark the customer's rows of the tables the mark overlaps dirty, where the mark is newer than
        the row's load (or than since_ns, for rows of a load that started then)."""
        customer, mark_ns, lo, hi = mark
        first, last = lo - lo % DAY_NS, hi - hi % DAY_NS
        if held is self._held and (last - first) // DAY_NS < len(held):
            keys: list[Key] = [(s, s + DAY_NS) for s in range(first, last + 1, DAY_NS)] + list(self._edges)
        else:
            keys = list(held)
        code = self._codes.get(customer)
        for key in keys:
            one = held.get(key)
            if one is None or not (lo < key[1] and hi >= key[0]):
                continue
            if mark_ns > (one.loaded_at(code) if since_ns is None else since_ns):
                one.dirty.add(customer)

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
        return sum(h.table.entries for h in self._held.values())

    def holds(self, day_starts: list[int], edges: list[Key]) -> bool:
        """Whether every table of these days and edges is held (some customers' rows may be dirty)."""
        return bool(day_starts) and all(k in self._held for k in [(d, d + DAY_NS) for d in day_starts] + edges)

    async def tables(
        self, day_starts: list[int], edges: list[Key] | None = None, read_edge: EdgeReader | None = None
    ) -> list[DayTable] | None:
        """The tables of these days (1d window starts) and edge intervals (read with `read_edge`), read
        where missing or dirty; None when the replica may not be trusted or they do not fit in
        `max_entries`."""
        if not self.trusted() or not day_starts:
            return None
        if self._entries_per_day * len(day_starts) > self.max_entries:
            return None
        edges = edges or []
        keys = [(d, d + DAY_NS) for d in day_starts] + edges
        async with self._lock:
            epoch = self._epoch
            missing = [k for k in keys if k not in self._held]
            dirty = {k: self._held[k] for k in keys if k in self._held and self._held[k].dirty}
            whole = missing + [k for k, one in dirty.items() if one.rereads_whole()]
            days = [k[0] for k in whole if k not in edges]
            partial = {k: one for k, one in dirty.items() if not one.rereads_whole()}
            await asyncio.gather(
                self._load(self._read_days(days), epoch),
                *(self._load(self._read_edge(k, None, read_edge), epoch) for k in whole if k in edges),
                *(self._reload(k, one, epoch, read_edge) for k, one in partial.items()),
            )
            if epoch != self._epoch or not self.trusted():
                return None
            found = [one for k in keys if (one := self._held.get(k)) is not None]
            if len(found) < len(keys):
                return None
            now = self.now_ns()
            for one in found:
                one.used_ns = now
            self._entries_per_day = self.entries / max(len(self._held) - len(self._edges), 1)
            fits = self._fit(set(keys))
            ENTRIES.set(self._entries())
            self._found = tuple((k, one.version) for k, one in zip(keys, found, strict=True)) if fits else ()
            return [one.table for one in found] if fits else None

    async def ranked(
        self, day_starts: list[int], edges: list[Key] | None = None, read_edge: EdgeReader | None = None
    ) -> Quantiles | None:
        """`day_tables.quantiles` of `tables(...)`, or None as it. The ranking of a set of tables is kept
        until one of them changes (its version): answers over the same range rank once; and while some
        change (a live processor writes today's), the others are ranked as one folded table."""
        tables = await self.tables(day_starts, edges, read_edge)
        if tables is None:
            return None
        signature = self._found
        found = self._ranked.get(signature)
        if found is None:
            found = await asyncio.to_thread(quantiles, self._folded(signature, tables))
            if len(self._ranked) >= RANKED_KEPT:
                self._ranked.pop(next(iter(self._ranked)))
            self._ranked[signature] = found
        return found

    def _folded(self, signature: tuple[tuple[Key, int], ...], tables: list[DayTable]) -> list[DayTable]:
        """The tables to rank: those changed within HOT_S beside the fold of the others when it is built
        (else all of them, and the fold is started)."""
        now = self.now_ns()
        hot = [(one := self._held.get(k)) is None or now - one.changed_ns <= HOT_S * 1e9 for k, _ in signature]
        cold = tuple(found for found, is_hot in zip(signature, hot, strict=True) if not is_hot)
        if len(cold) < 2 or len(cold) == len(signature):
            return tables
        folded = self._folds.get(cold)
        if folded is not None:
            return [folded, *(t for t, is_hot in zip(tables, hot, strict=True) if is_hot)]
        cold_tables = [t for t, is_hot in zip(tables, hot, strict=True) if not is_hot]
        if self._folding is None and self._entries() + sum(t.entries for t in cold_tables) <= self.max_entries:
            self._folding = asyncio.create_task(self._fold_tables(cold, cold_tables))
        return tables

    async def _fold_tables(self, cold: tuple[tuple[Key, int], ...], tables: list[DayTable]) -> None:
        epoch = self._epoch
        try:
            folded = await asyncio.to_thread(DayTable.fold, tables)
        except Exception:  # the answers rank the tables one by one, as before the fold
            log.exception("could not fold the fleet replica's unchanged tables")
            return
        finally:
            self._folding = None
        FOLDS.inc()
        if epoch == self._epoch:
            if len(self._folds) >= FOLDS_KEPT:
                self._folds.pop(next(iter(self._folds)))
            self._folds[cold] = folded
            ENTRIES.set(self._entries())

    def _entries(self) -> int:
        """The entries of the tables and of the folds."""
        return self.entries + sum(t.entries for t in self._folds.values())

    def _store(self, key: Key, one: _Held) -> None:
        if key in self._held:
            one.changed_ns = self.now_ns()
        self._held[key] = one
        if key[1] - key[0] != DAY_NS or key[0] % DAY_NS:
            self._edges.add(key)

    def _drop(self, key: Key) -> None:
        self._held.pop(key, None)
        self._edges.discard(key)

    def _fit(self, needed: set[Key]) -> bool:
        """Evict the least recently used tables not needed now until the entries fit; False if the
        needed ones alone do not (they are dropped too: the caller reads InfluxDB)."""
        total = self.entries
        for key in sorted((k for k in self._held if k not in needed), key=lambda k: self._held[k].used_ns):
            if total <= self.max_entries:
                break
            total -= self._held[key].table.entries
            self._drop(key)
        if total <= self.max_entries:
            return True
        for key in needed:
            self._drop(key)
        return False

    async def _read_days(self, days: list[int], who: list[str] | None = None) -> dict[Key, DayTable]:
        """The days' tables (1d window starts) for `who` (None: everyone): one statement per run of days,
        counted as every reader counts (`counting`: compacted points and sources each once)."""
        if not days:
            return {}
        statements = influxql.windows_statements(self.level, adjacent_runs(sorted(days), DAY_NS), who, FIELDS)
        results = await self.client.query("; ".join(statements))
        rows = await counted_read(self.client, results, self.level, who, FIELDS)
        keys = [(d, d + DAY_NS) for d in days]
        counts = np.asarray([n or 0 for n in rows.cols["count"]], np.int64)
        return await self._build(keys, rows.starts(self.level), rows.customers, counts, rows.cols["hist"])

    async def _read_edge(self, key: Key, who: list[str] | None, read: EdgeReader | None) -> dict[Key, DayTable]:
        if read is None:
            raise ValueError("an edge interval needs a reader")
        w = await read(key, who)
        return await self._build([key], w.start, w.customer, w.count, w.hist)

    async def _build(
        self, keys: list[Key], starts: IntArray, customers: list[str], counts: IntArray, texts: list[str | None]
    ) -> dict[Key, DayTable]:
        """One table per key from rows (window start, customer, count, hist); `*` (the fleet-wide
        points) left out. Decoding a month of every customer takes seconds: off the event loop, so that
        the marks' poll (and other answers) keep running meanwhile."""
        codes = np.asarray([-1 if c == FLEET_CUSTOMER else self.code(c) for c in customers], np.int64)

        def build() -> dict[Key, DayTable]:
            out: dict[Key, DayTable] = {}
            for a, b in keys:
                idx = np.flatnonzero((starts >= a) & (starts < b) & (codes >= 0))
                out[(a, b)] = DayTable.build(codes[idx], counts[idx], [texts[i] for i in idx.tolist()])
            return out

        return await asyncio.to_thread(build)

    async def _tracked(self, read: Awaitable[dict[Key, DayTable]]) -> tuple[int, dict[Key, DayTable]]:
        """(when the read started, its tables); marks polled meanwhile are kept for it."""
        started = self.now_ns()
        self._inflight.append(started)
        try:
            return started, await read
        finally:
            self._inflight.remove(started)

    def _marks_since(self, started: int) -> list[Mark]:
        """The marks polled during a load that started then (newer than it); the log is dropped when no
        load is in flight any more."""
        found = [m for m in self._seen if m[1] > started]
        if not self._inflight:
            self._seen.clear()
        return found

    async def _load(self, read: Awaitable[dict[Key, DayTable]], epoch: int) -> None:
        """Read whole tables (every customer) and hold them."""
        started, tables = await self._tracked(read)
        for a, b in tables:
            READS.labels("day" if b - a == DAY_NS and a % DAY_NS == 0 else "edge").inc()
        if epoch != self._epoch:
            return
        loaded = {k: _Held(t, started) for k, t in tables.items()}
        for mark in self._marks_since(started):
            self._dirty(mark, loaded, since_ns=started)
        for key, one in loaded.items():
            self._store(key, one)

    async def _reload(self, key: Key, one: _Held, epoch: int, read_edge: EdgeReader | None) -> None:
        """Read a table's dirty customers again and replace their rows."""
        names = sorted(one.dirty)
        one.dirty = set()
        edge = key in self._edges
        try:
            read = self._read_edge(key, names, read_edge) if edge else self._read_days([key[0]], names)
            started, tables = await self._tracked(read)
        except BaseException:
            one.dirty.update(names)
            raise
        READS.labels("customers").inc()
        if epoch != self._epoch or self._held.get(key) is not one:
            return
        codes = np.asarray([self.code(c) for c in names], np.int64)
        one.table = DayTable.join(one.table.without(codes), tables[key])
        one.version = next(_VERSIONS)
        one.changed_ns = self.now_ns()
        one.reloaded_ns.update(dict.fromkeys(codes.tolist(), started))
        for mark in self._marks_since(started):
            if mark[0] in names:
                self._dirty(mark, {key: one}, since_ns=started)
