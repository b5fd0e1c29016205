"""Which rows of a rollup read count, reading the compacted points' `covers` only where it matters.

A window's stored rows are its sources and, once compacted, its compacted points
(`storage/compacted.py`). A reader needs a compacted point's `covers` (12 bytes per source it holds,
base64: ~1 KB for 65 sources, more than the histogram of a small window) only to tell which sources
*beside it* it already holds. Once compacted, a window mostly holds its compacted point alone, so reads
leave `covers` out and count:

* a window of sources only: every row;
* a window of compacted points only: its newest complete one (complete: every field read is there).
  A newer generation holds every source an older one holds, and a source is deleted only once a
  generation holding it is acknowledged, so no source of the window is missing from it;
* a window holding both (compaction under way, late lines after compaction, a compacted file ingested
  again, a crash between the compactor's write and its deletes): read again, whole, with `covers`, and
  counted from that second read alone (`compacted.counted_rows`).

A window that can still be open (`OpenWindows`: its end less than `COMPACTION_LATENESS_S` ago) is the
exception: once open-window compaction merged its sealed sources, it holds its compacted point beside
the sources of segments still being read for as long as it is open, so it is mixed at nearly every
read. Readers ask for `covers` in their first read for those windows (`influxql.windows_statements`'
`covers_from`) and count them with `compacted.counted_rows` at once: a few hundred bytes of `covers`
per customer-window instead of a second round trip that reads the window again.

Every window is so counted from the rows one statement returned for it, exactly as if `covers` had been
read with every row; the second read costs a round trip only while some closed window holds both kinds.
Where the open windows begin only decides which read brings `covers`, never what is counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from logpulse.readmodel import influxql
from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.plan import Plan, Who
from logpulse.storage import compacted
from logpulse.storage.influx import AsyncInfluxQuery
from logpulse.storage.points import TAG_CUSTOMER, RollupLevel

MAX_REREAD_STATEMENTS = 16
"""At most this many statements (time ranges) re-read mixed windows; more ranges are bridged, widest
gaps kept (the rows between are read and dropped)."""


@dataclass(frozen=True)
class OpenWindows:
    """Which windows can still be open: those ending less than `lateness_ns` before now, as
    `logpulse compact` tells closed windows from open ones (`COMPACTION_LATENESS_S`)."""

    lateness_ns: int = 0

    def first(self, level: RollupLevel, now_ns: int | None = None) -> int:
        """The start of the level's first window that can still be open."""
        closed = (time.time_ns() if now_ns is None else now_ns) - self.lateness_ns
        return closed - closed % level.window_ns

    def statements(
        self, level: RollupLevel, ranges: list[tuple[int, int]], who: Who, fields: tuple[str, ...]
    ) -> list[str]:
        """`influxql.windows_statements`, `covers` read in the windows that can still be open."""
        return influxql.windows_statements(level, ranges, who, fields, covers_from=self.first(level))


@dataclass
class Rows:
    """The rows of a windows read as columns: times, customers ("" when the read was for one customer),
    one list per column read, and per row whether its statement selected `covers`."""

    times: IntArray
    customers: list[str]
    cols: dict[str, list[Any]]
    covers_read: npt.NDArray[np.bool_]

    @classmethod
    def parse(cls, results: list[dict[str, Any]], columns: tuple[str, ...]) -> Rows:
        """The statements' results as columns (a column a series lacks is None on its rows)."""
        times: list[int] = []
        cols: dict[str, list[Any]] = {f: [] for f in columns}
        customers: list[str] = []
        covers_read: list[bool] = []
        for result in results:
            for s in result.get("series", []) or []:
                values = s.get("values") or []
                if not values:
                    continue
                index = {c: i for i, c in enumerate(s["columns"])}
                transposed = list(zip(*values, strict=True))
                times.extend(transposed[index["time"]])
                for f in columns:
                    cols[f].extend(transposed[index[f]] if f in index else [None] * len(values))
                customers.extend([(s.get("tags") or {}).get(TAG_CUSTOMER, "")] * len(values))
                covers_read.extend([compacted.FIELD in index] * len(values))
        return cls(np.asarray(times, dtype=np.int64), customers, cols, np.asarray(covers_read, dtype=bool))

    def __len__(self) -> int:
        return len(self.times)

    def starts(self, level: RollupLevel) -> IntArray:
        return self.times - self.times % level.window_ns

    def take(self, mask: npt.NDArray[np.bool_]) -> Rows:
        if mask.all():
            return self
        idx = np.flatnonzero(mask).tolist()
        return Rows(
            self.times[mask],
            [self.customers[i] for i in idx],
            {f: [v[i] for i in idx] for f, v in self.cols.items()},
            self.covers_read[mask],
        )

    def plus(self, other: Rows) -> Rows:
        """These rows and `other`'s, in the columns both have."""
        cols = {f: v + other.cols[f] for f, v in self.cols.items() if f in other.cols}
        return Rows(
            np.concatenate([self.times, other.times]),
            self.customers + other.customers,
            cols,
            np.concatenate([self.covers_read, other.covers_read]),
        )


def complete(rows: Rows, fields: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    """Per row, whether every field read is there (a point being written may show some before others)."""
    present = np.ones(len(rows), dtype=bool)
    for f in (f for f in fields if None in rows.cols[f]):
        present &= np.fromiter((v is not None for v in rows.cols[f]), dtype=bool, count=len(rows))
    return present


async def counted(client: AsyncInfluxQuery, level: RollupLevel, rows: Rows, who: Who, fields: tuple[str, ...]) -> Rows:
    """The rows a reader counts (module docstring). `rows` were read with `fields` and the `compacted`
    tag for `who`, some with `covers` (`Rows.covers_read`: counted from it at once); the windows of the
    others holding both compacted points and sources are read again."""
    marked = np.fromiter((m is not None for m in rows.cols[compacted.TAG]), dtype=bool, count=len(rows))
    if not marked.any():
        return rows
    if rows.covers_read.any():
        with_covers = rows.take(rows.covers_read)
        rest = await counted(client, level, rows.take(~rows.covers_read), who, fields)
        return with_covers.take(_counted_with_covers(with_covers, level, fields)).plus(rest)
    keys = compacted.window_keys(rows.customers, rows.times, level.window_ns)
    # sets, not np.isin: a month holds tens of windows, where numpy's set routines cost more than the work
    both = set(keys[marked].tolist()).intersection(keys[~marked].tolist())
    mixed = np.zeros(len(rows), dtype=bool)
    if both:
        mixed = np.fromiter((k in both for k in keys.tolist()), dtype=bool, count=len(rows))
    keep = ~marked & ~mixed
    keep[compacted.newest(keys, rows.times, marked & ~mixed & complete(rows, fields))] = True
    if not mixed.any():
        return rows.take(keep)
    return rows.take(keep).plus(await _reread(client, level, rows.take(mixed), who, fields))


async def counted_read(
    client: AsyncInfluxQuery,
    results: list[dict[str, Any]],
    level: RollupLevel,
    who: Who,
    fields: tuple[str, ...],
    plan: Plan | None = None,
) -> Rows:
    """The counted rows of one level's read (`results`, read with `fields` and the `compacted` tag),
    only those inside `plan`'s runs when given."""
    rows = Rows.parse(results, (*fields, compacted.TAG, compacted.FIELD))
    if plan is not None and len(rows):
        rows = rows.take(plan.keep(level, rows.starts(level)))
    return await counted(client, level, rows, who, fields)


async def _reread(client: AsyncInfluxQuery, level: RollupLevel, mixed: Rows, who: Who, fields: tuple[str, ...]) -> Rows:
    """The windows of `mixed`'s rows read again with `covers`, counted from that read alone."""
    pairs = set(zip(mixed.customers, mixed.starts(level).tolist(), strict=True))
    again_who = who if isinstance(who, str) else sorted({c for c, _ in pairs})
    ranges = reread_ranges(sorted({s for _, s in pairs}), level)
    statements = influxql.windows_statements(level, ranges, again_who, fields, covers_from=ranges[0][0])
    again = Rows.parse(await client.query("; ".join(statements)), (*fields, compacted.TAG, compacted.FIELD))
    again = again.take(
        np.fromiter(
            ((c, s) in pairs for c, s in zip(again.customers, again.starts(level).tolist(), strict=True)),
            dtype=bool,
            count=len(again),
        )
    )
    return again.take(_counted_with_covers(again, level, fields))


def _counted_with_covers(rows: Rows, level: RollupLevel, fields: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    """Mask of the rows counted among whole windows read with `covers`."""
    return compacted.counted_rows(
        rows.customers,
        rows.times,
        level.window_ns,
        rows.cols[compacted.TAG],
        rows.cols[compacted.FIELD],
        complete(rows, fields),
    )


def adjacent_runs(starts: list[int], window_ns: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering the sorted window starts, adjacent windows in one range."""
    runs: list[tuple[int, int]] = []
    for s in starts:
        if runs and runs[-1][1] == s:
            runs[-1] = (runs[-1][0], s + window_ns)
        else:
            runs.append((s, s + window_ns))
    return runs


def reread_ranges(starts: list[int], level: RollupLevel) -> list[tuple[int, int]]:
    """[start, end) ranges covering the sorted window starts: adjacent windows in one range, and at most
    MAX_REREAD_STATEMENTS ranges (the narrowest gaps bridged)."""
    runs = adjacent_runs(starts, level.window_ns)
    if len(runs) <= MAX_REREAD_STATEMENTS:
        return runs
    gaps = sorted(range(len(runs) - 1), key=lambda i: runs[i + 1][0] - runs[i][1])
    bridged = set(gaps[: len(runs) - MAX_REREAD_STATEMENTS])
    out = [runs[0]]
    for i in range(1, len(runs)):
        out[-1:] = [(out[-1][0], runs[i][1])] if i - 1 in bridged else [out[-1], runs[i]]
    return out
