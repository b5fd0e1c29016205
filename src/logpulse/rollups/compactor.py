"""`logpulse compact`: one pass over every closed rollup window of every level, in UTC-day chunks, then
over the open windows' sealed sources (`compact_open_chunk`, `open_compaction.py`).

Per chunk, in this order (each step is safe to be killed after, at any moment):

0. read the chunk's `count` column alone and stop there when no window holds more than one point: a
   window holding one point (a lone source, or its compacted point once its sources are gone) has
   nothing to merge or delete, and that is every closed window once a pass went over it. So a pass
   over days with nothing to do reads numbers, not the histograms, tables and `covers` of every row;
1. read every row of the chunk (sources and compacted points, every customer and `*`);
2. write the new compacted generations (`compaction.plan_window`) — once InfluxDB acknowledges them,
   readers count each window from its newest complete generation and the sources it does not cover
   (`storage/compacted.counted_rows`), so the window is exact whether or not its sources still exist;
3. per customer, read its rows of the chunk again and delete the sources of each window that its
   standing generation covers — one DELETE per run of such windows, restricted to source series
   (`compacted = ''`) and to times past the generations' millisecond — and the older generations.

InfluxDB 1.x cannot delete a point by anything but series and time, and one DELETE per point costs
~2 ms (measured: 1,200 in 2.2 s), too slow for millions of 15-minute sources; so sources are deleted
by time range. The re-read right before a customer's DELETEs makes a range include only windows
whose every source is covered; a late line's point written for such a window in the milliseconds
between that re-read and the DELETE would be removed with it (the one race left; docs/operations.md).

Open windows (`compact_open_chunk`) follow the same order — a `count`-only read, the rows, the writes,
a read after them, the deletes — but across customers: the deletes of sealed sources name exact times
(one statement per window and identity, every customer at once, ~50 per request), never a range, since
an open window's range can hold points still growing.

Only one compactor may run per database (a lock file in RECOVERY_DIR): two would write the same
generation with different contents.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from logpulse.rollups.compaction import Row, WindowPlan, plan_window
from logpulse.rollups.open_compaction import by_window, open_deletes, plan_open_window
from logpulse.storage import compacted, fleet_table, seals
from logpulse.storage.influx import InfluxWriter, quote_ident, quote_literal, series_rows
from logpulse.storage.points import ROLLUP_LEVELS, ROLLUP_RP, TAG_CUSTOMER, RollupLevel, rollup_from

log = logging.getLogger(__name__)

DAY_NS = 86400 * 10**9
_FIELDS = ("count", "failed", "server_errors", "sum", "hist", *fleet_table.FIELDS, compacted.TAG, compacted.FIELD)
WRITE_BATCH = 5000
DELETE_BATCH = 50
"""DELETE statements per request in open windows (one per window and sealed identity)."""


@dataclass
class PassSummary:
    windows_written: int = 0
    deletes: int = 0
    grown: int = 0
    seconds: float = 0.0

    def add(self, other: PassSummary) -> None:
        self.windows_written += other.windows_written
        self.deletes += other.deletes
        self.grown += other.grown

    def counts(self) -> tuple[int, int]:
        return self.windows_written, self.deletes

    def line(self) -> str:
        return (
            f"compacted {self.windows_written} windows, {self.deletes} DELETE statements, "
            f"{self.grown} sources grown after compaction, {self.seconds:.1f} s"
        )


class CompactionLocked(RuntimeError):
    """Another compactor holds the lock."""


@contextmanager
def single_compactor(lock_dir: str) -> Iterator[None]:
    """Hold the database's compaction lock for the block (raises CompactionLocked if taken)."""
    path = Path(lock_dir)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "compaction.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CompactionLocked(f"another `logpulse compact` holds {path / 'compaction.lock'}") from exc
        yield


def _rows(
    writer: InfluxWriter, level: RollupLevel, a: int, b: int, customer: str | None = None
) -> dict[str, list[Row]]:
    who = "" if customer is None else f"{quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)} AND "
    out: dict[str, list[Row]] = defaultdict(list)
    for result in writer.query(_per_customer(level, _FIELDS, f"{who}time >= {a} AND time < {b}")):
        for tags, row in series_rows(result):
            out[tags.get(TAG_CUSTOMER, "")].append(_row(row))
    return out


def _per_customer(level: RollupLevel, fields: tuple[str, ...], where: str) -> str:
    """The SELECT of `fields` of a level's points matching `where`, one series per customer."""
    selected = ", ".join(quote_ident(f) for f in fields)
    return f"SELECT {selected} FROM {rollup_from(level)} WHERE {where} GROUP BY {quote_ident(TAG_CUSTOMER)}"


def _row(row: dict[str, Any]) -> Row:
    return Row(
        int(row["time"]),
        row.get("count"),
        row.get("failed"),
        row.get("server_errors"),
        row.get("sum"),
        row.get("hist"),
        tuple(row.get(f) or "" for f in fleet_table.FIELDS) if any(row.get(f) for f in fleet_table.FIELDS) else (),
        row.get(compacted.TAG),
        row.get(compacted.FIELD),
    )


def _plans(level: RollupLevel, rows: dict[str, list[Row]], last_window: int) -> list[WindowPlan]:
    plans = []
    for customer, customer_rows in rows.items():
        by_window: dict[int, list[Row]] = defaultdict(list)
        for r in customer_rows:
            by_window[r.time_ns - r.time_ns % level.window_ns].append(r)
        for start, window_rows in sorted(by_window.items()):
            if start >= last_window:
                continue
            p = plan_window(customer, level, start, window_rows)
            if p is not None:
                plans.append(p)
    return plans


def _delete_statements(level: RollupLevel, customer: str, plans: list[WindowPlan]) -> list[str]:
    """DELETEs of the covered sources (one per run of adjacent deletable windows) and old generations."""
    m, who = quote_ident(level.measurement), f"{quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)}"
    sources = f"{m} WHERE {who} AND {quote_ident(compacted.TAG)} = ''"
    generations = f"{m} WHERE {who} AND {quote_ident(compacted.TAG)} = {quote_literal(compacted.TAG_VALUE)}"
    runs: list[tuple[int, int]] = []
    out: list[str] = []
    for p in sorted(plans, key=lambda p: p.window_start):
        if p.deletable:
            if runs and runs[-1][1] == p.window_start:
                runs[-1] = (runs[-1][0], p.window_start + level.window_ns)
            else:
                runs.append((p.window_start, p.window_start + level.window_ns))
        if p.old_generations:
            end = p.window_start + p.generation
            out.append(f"DELETE FROM {generations} AND time >= {p.window_start} AND time < {end}")
    # sources never lie in a window's first millisecond (`plan_window` leaves such a window alone)
    out += [f"DELETE FROM {sources} AND time >= {a + compacted.MAX_GENERATIONS} AND time < {b}" for a, b in runs]
    return out


def _holds_work(writer: InfluxWriter, level: RollupLevel, a: int, b: int) -> bool:
    """Does a window starting in [a, b) hold more than one point (step 0 of the module docstring)?"""
    for result in writer.query(_per_customer(level, ("count",), f"time >= {a} AND time < {b}")):
        for s in result.get("series", []) or []:
            times = np.asarray([row[0] for row in s.get("values") or []], np.int64)
            starts = times - times % level.window_ns
            if len(np.unique(starts)) < len(starts):
                return True
    return False


def compact_chunk(writer: InfluxWriter, level: RollupLevel, a: int, b: int, last_window: int) -> PassSummary:
    """Compact the windows of [a, b) that start before `last_window` (see the module docstring)."""
    summary = PassSummary()
    if not _holds_work(writer, level, a, b):
        return summary
    plans = _plans(level, _rows(writer, level, a, b), last_window)
    summary.grown = sum(len(p.grown) for p in plans)
    lines = [compacted.compacted_line(p.write, p.covers) for p in plans if p.write is not None]
    for i in range(0, len(lines), WRITE_BATCH):
        writer.write(lines[i : i + WRITE_BATCH], rp=ROLLUP_RP)
    summary.windows_written = len(lines)
    for customer in sorted({p.customer for p in plans if p.deletable or p.old_generations}):
        # a window that got a new source since the first read is left for the next pass: only windows
        # whose every source the standing generation covers lose their sources
        again = [p for p in _plans(level, _rows(writer, level, a, b, customer), last_window) if p.write is None]
        statements = _delete_statements(level, customer, again)
        if statements:
            writer.query("; ".join(statements))
            summary.deletes += len(statements)
    return summary


def _open_holds_work(writer: InfluxWriter, level: RollupLevel, a: int, b: int, sealed: seals.Seals, least: int) -> bool:
    """Step 0 for open windows: does a window starting in [a, b) hold `least` sealed identities, or a
    compacted point beside another one or beside a sealed source (a pass cut short: deletes left)?"""
    identities: dict[int, set[int]] = defaultdict(set)
    for result in writer.query(_per_customer(level, ("count",), f"time >= {a} AND time < {b}")):
        for s in result.get("series", []) or []:
            windows: dict[int, list[int]] = defaultdict(list)
            for row in s.get("values") or []:
                t = int(row[0])
                windows[t - t % level.window_ns].append(t % level.window_ns)
            for start, offsets in windows.items():
                generations = sum(o < compacted.MAX_GENERATIONS for o in offsets)
                found = {o for o in offsets if o >= compacted.MAX_GENERATIONS and sealed.sealed(start, o)}
                if generations > 1 or (generations and found):
                    return True
                identities[start] |= found
    return any(len(v) >= least for v in identities.values())


def compact_open_chunk(
    writer: InfluxWriter, level: RollupLevel, a: int, b: int, sealed: seals.Seals, least: int
) -> PassSummary:
    """Merge and delete the sealed sources of the open windows starting in [a, b) (`open_compaction.py`)."""
    summary = PassSummary()
    if not _open_holds_work(writer, level, a, b, sealed, least):
        return summary
    windows = by_window(_rows(writer, level, a, b), level.window_ns)
    points = [p for start, rows in sorted(windows.items()) for p in plan_open_window(level, start, rows, sealed, least)]
    lines = [compacted.compacted_line(p, covers) for p, covers in points]
    for i in range(0, len(lines), WRITE_BATCH):
        writer.write(lines[i : i + WRITE_BATCH], rp=ROLLUP_RP)
    summary.windows_written = len(lines)
    if lines:  # the deletes follow from what is stored once the new generations are acknowledged
        windows = by_window(_rows(writer, level, a, b), level.window_ns)
    statements = [q for start, rows in sorted(windows.items()) for q in open_deletes(level, start, rows, sealed)]
    for i in range(0, len(statements), DELETE_BATCH):
        writer.query("; ".join(statements[i : i + DELETE_BATCH]))
    summary.deletes = len(statements)
    return summary


def _edge_time(writer: InfluxWriter, level: RollupLevel, which: str) -> int | None:
    """The time of the level's first or last point (`which`: FIRST or LAST)."""
    rows = [
        row
        for result in writer.query(f'SELECT {which}("count") FROM {rollup_from(level)}')
        for _, row in series_rows(result)
    ]
    return int(rows[0]["time"]) if rows else None


def compact(
    writer: InfluxWriter, lateness_s: float, now_ns: int | None = None, open_min_sealed: int = 0
) -> PassSummary:
    """One pass over every level: every window whose end is `lateness_s` or more before now, then (with
    `open_min_sealed` > 0) the sealed sources of the open windows that hold at least that many."""
    started = time.perf_counter()
    now_ns = time.time_ns() if now_ns is None else now_ns
    total = PassSummary()
    for level in ROLLUP_LEVELS:
        closed = now_ns - int(lateness_s * 1e9)
        last_window = closed // level.window_ns * level.window_ns  # windows ending at or before `closed`
        first = _edge_time(writer, level, "FIRST")
        if first is None:
            continue
        a = first - first % DAY_NS
        while a < last_window:
            s = compact_chunk(writer, level, a, min(a + DAY_NS, last_window), last_window)
            log.info("%s day %d: %d windows written, %d DELETE statements", level.measurement, a, *s.counts())
            total.add(s)
            a += DAY_NS
        if open_min_sealed <= 0:
            continue
        last = _edge_time(writer, level, "LAST")
        sealed = seals.read(writer, level, last_window) if last is not None else None
        a = max(last_window, first - first % level.window_ns)
        while sealed and last is not None and a <= last:
            b = a - a % DAY_NS + DAY_NS
            s = compact_open_chunk(writer, level, a, b, sealed, open_min_sealed)
            log.info("%s open day %d: %d windows written, %d DELETE statements", level.measurement, a, *s.counts())
            total.add(s)
            a = b
    total.seconds = time.perf_counter() - started
    log.info(
        "compaction: %d windows written, %d DELETE statements, %d grown sources, %.1f s",
        total.windows_written,
        total.deletes,
        total.grown,
        total.seconds,
    )
    return total
