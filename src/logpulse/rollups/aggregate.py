"""Aggregation: a parsed chunk's lines as columns (`RollupPart`), added to one level's segment state
per customer-window and fleet-wide (customer `*`), and the points written from that state.

Vectorised: a few numpy calls per part plus one small update per customer-window touched; the
fleet-wide aggregate is added from the customer-window groups and (millisecond, count) runs already
computed, not by bucketing the lines again. The identity rules the points obey are in `identity.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from logpulse.model import ParsedChunk, RequestBatch, RollupPoint
from logpulse.storage import fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel


@dataclass(slots=True)
class RollupPart:
    """The accepted lines of one chunk (one segment of one file), as columns for aggregation."""

    file_key: int
    start: int
    end: int
    customers: list[str]
    codes: npt.NDArray[np.int64]  # index into customers, per line
    times: npt.NDArray[np.int64]
    failed: npt.NDArray[np.bool_]
    server_errors: npt.NDArray[np.bool_]
    durations: npt.NDArray[np.float64]
    path: str = ""  # the file read (its size bounds what an earlier run may have written: `RollupLogic`)


def _failed(batches: list[RequestBatch], n: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(status >= 400, status >= 500) per line: statuses are 3 digits, so the first byte of each decides
    (one join and numpy comparisons instead of a Python call per line; measured 9x faster)."""
    joined = "".join(itertools.chain.from_iterable(b.statuses for b in batches)).encode("ascii", "replace")
    if len(joined) == 3 * n:
        first = np.frombuffer(joined, dtype=np.uint8)[0::3]
        return first >= ord("4"), first >= ord("5")
    statuses = list(itertools.chain.from_iterable(b.statuses for b in batches))
    return (
        np.fromiter(map("400".__le__, statuses), np.bool_, n),
        np.fromiter(map("500".__le__, statuses), np.bool_, n),
    )


def rollup_part(parsed: ParsedChunk) -> tuple[str, RollupPart] | None:
    """Columns of a parsed chunk keyed by its file (the rollup state's key), or None if it has no lines."""
    batches = list(parsed.batches.values())
    n = sum(len(b) for b in batches)
    if n == 0:
        return None
    file_key, start, end = parsed.span
    lens = np.fromiter((len(b) for b in batches), np.int64, len(batches))
    failed, server_errors = _failed(batches, n)
    part = RollupPart(
        file_key,
        start,
        end,
        [b.customer_id for b in batches],
        np.repeat(np.arange(len(batches), dtype=np.int64), lens),
        np.fromiter(itertools.chain.from_iterable(b.times for b in batches), np.int64, n),
        failed,
        server_errors,
        np.fromiter(map(float, itertools.chain.from_iterable(b.durations for b in batches)), np.float64, n),
        parsed.path,
    )
    return str(file_key), part


@dataclass(slots=True)
class Aggregate:
    count: int
    failed: int
    sum_ns: int
    hist: LatencyHistogram
    server_errors: int | None  # None: restored from a snapshot older than the field (see `_upgrade`)

    def add(
        self,
        count: int,
        failed: int,
        server_errors: int,
        sum_ns: int,
        ms: npt.NDArray[np.int64],
        ms_counts: npt.NDArray[np.int64],
    ) -> None:
        """Add a group of lines: its numbers and the (millisecond, count) runs of its exact durations."""
        self.count += count
        self.failed += failed
        if self.server_errors is not None:  # unknown stays unknown: never a partial 5xx count
            self.server_errors += server_errors
        self.sum_ns += sum_ns
        if len(ms):
            self.hist.add_ms_counts(ms, ms_counts)


@dataclass(slots=True)
class SegmentAggregates:
    """One level's aggregates of one file segment, under one identity."""

    index: int
    ident_ns: int
    aggs: dict[tuple[str, int], Aggregate] = field(default_factory=dict)
    customers: dict[int, list[str]] = field(default_factory=dict)
    """window → the customers with an aggregate in it (the `*` table of a window reads only these)."""
    dirty: set[tuple[str, int]] = field(default_factory=set)


@dataclass(slots=True)
class LineValues:
    """Per-line values shared by all levels of one part."""

    ms: npt.NDArray[np.int64]  # duration in whole milliseconds (rounded)
    exact: npt.NDArray[np.bool_]  # the duration is a whole number of milliseconds
    all_exact: bool
    ms_max: int

    @classmethod
    def of(cls, part: RollupPart) -> LineValues:
        scaled = part.durations * 1000.0
        ms = np.rint(scaled)
        exact = np.abs(scaled - ms) <= 1e-6 + 1e-12 * ms
        return cls(ms.astype(np.int64), exact, bool(exact.all()), int(ms.max()))


_EXACT_SUM_LIMIT = 2**53  # float64 holds every integer up to here: bincount's weights stay exact


def _groups(
    key: npt.NDArray[np.int64], size: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(sorted distinct keys, index of each line's key among them, lines per key); a counting pass
    instead of a sort when the key range is small (the usual case: customers x a few windows)."""
    if size <= 4 * len(key) + 65536:
        present = np.bincount(key, minlength=size)
        groups = np.flatnonzero(present)
        lookup = np.zeros(size, dtype=np.int64)
        lookup[groups] = np.arange(len(groups))
        return groups.astype(np.int64), lookup[key], present[groups].astype(np.int64)
    groups, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return groups.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)


def pair_totals(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], weights: npt.NDArray[np.int64] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The sorted distinct (a, b) pairs of non-negative integers and each one's summed `weights`
    (default: how often it occurs): one `np.unique` of a combined key while it fits in 62 bits, else
    a sort of the pairs (durations of years). Shared by the customers' and the fleet's histograms."""
    if len(a) == 0:
        return a, b, np.zeros(0, dtype=np.int64)
    base = int(b.max()) + 1
    if (int(a.max()) + 1) * base < 2**62:
        if weights is None:
            keys, totals = np.unique(a * base + b, return_counts=True)
        else:
            keys, inverse = np.unique(a * base + b, return_inverse=True)
            totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(keys))
        return keys // base, keys % base, totals.astype(np.int64)
    srt = np.lexsort((b, a))
    a_s, b_s = a[srt], b[srt]
    new = np.ones(len(a_s), dtype=np.bool_)
    new[1:] = (a_s[1:] != a_s[:-1]) | (b_s[1:] != b_s[:-1])
    starts = np.flatnonzero(new)
    totals = np.diff(np.append(starts, len(a_s))) if weights is None else np.add.reduceat(weights[srt], starts)
    return a_s[starts], b_s[starts], totals.astype(np.int64)


def aggregate(seg: SegmentAggregates, level: RollupLevel, part: RollupPart, v: LineValues) -> None:
    """Add a part's lines to a level's segment state (vectorised: a few numpy calls per part plus
    one small update per customer-window touched)."""
    windows = part.times // level.window_ns
    wmin = int(windows.min())
    span = int(windows.max()) - wmin + 1
    groups, inverse, counts = _groups(part.codes * span + (windows - wmin), len(part.customers) * span)
    n_groups = len(groups)
    failed = np.bincount(inverse, weights=part.failed, minlength=n_groups).astype(np.int64)
    server = np.bincount(inverse, weights=part.server_errors, minlength=n_groups).astype(np.int64)
    if v.all_exact and v.ms_max * len(v.ms) < _EXACT_SUM_LIMIT:
        sums = np.bincount(inverse, weights=v.ms, minlength=n_groups).astype(np.int64) * 1_000_000
    else:  # exact integer nanoseconds, whatever the magnitudes
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(n_groups))
        sums = np.add.reduceat(np.rint(part.durations[order] * 1e9).astype(np.int64), starts)
    # (group, ms) runs of the exact lines: one sort of a combined key, then per group a slice
    ex_groups, ex_ms = (inverse, v.ms) if v.all_exact else (inverse[v.exact], v.ms[v.exact])
    run_group, run_ms, run_counts = pair_totals(ex_groups, ex_ms)
    group_runs = np.searchsorted(run_group, np.arange(n_groups + 1)).tolist()
    names = part.customers
    counts_l, failed_l, server_l, sums_l = counts.tolist(), failed.tolist(), server.tolist(), sums.tolist()
    for g, key in enumerate(groups.tolist()):
        k = (names[key // span], key % span + wmin)
        agg = seg.aggs.get(k)
        if agg is None:
            agg = seg.aggs[k] = Aggregate(0, 0, 0, LatencyHistogram(level.max_exact), 0)
            seg.customers.setdefault(k[1], []).append(k[0])
        a, b = group_runs[g], group_runs[g + 1]
        agg.add(counts_l[g], failed_l[g], server_l[g], sums_l[g], run_ms[a:b], run_counts[a:b])
        if not v.all_exact:
            fine = part.durations[(inverse == g) & ~v.exact]
            if len(fine):
                agg.hist.add(fine)
        seg.dirty.add(k)
    groups_of_part = _GroupSums(
        groups % span, wmin, counts, failed, server, sums, inverse, run_group, run_ms, run_counts
    )
    _add_fleet(seg, level, part, v, groups_of_part)


@dataclass(slots=True)
class _GroupSums:
    """What `aggregate` computed per customer-window group of a part, for the fleet-wide aggregate."""

    window: npt.NDArray[np.int64]  # per group: window index relative to the part's first window
    first_window: int  # the part's first window (absolute index)
    count: npt.NDArray[np.int64]
    failed: npt.NDArray[np.int64]
    server_errors: npt.NDArray[np.int64]
    sum_ns: npt.NDArray[np.int64]
    inverse: npt.NDArray[np.int64]  # per line: its group
    # the (group, millisecond, count) runs of the lines with exact durations, sorted by group
    run_group: npt.NDArray[np.int64]
    run_ms: npt.NDArray[np.int64]
    run_counts: npt.NDArray[np.int64]


def _add_fleet(
    seg: SegmentAggregates,
    level: RollupLevel,
    part: RollupPart,
    v: LineValues,
    gs: _GroupSums,
) -> None:
    """Add the part to the fleet-wide aggregates (customer `*`) of the segment: per window, the sums of
    its customer-window groups and the merge of their (millisecond, count) runs, all computed already
    by `aggregate` — a few numpy calls over groups and runs, no second pass over the lines. The `*`
    aggregate lives in the same segment state under the same identity, so it is cumulative, survives
    replays and double ingest exactly as the customers' points do."""
    n_win = int(gs.window.max()) + 1
    count = np.bincount(gs.window, weights=gs.count, minlength=n_win).astype(np.int64).tolist()
    failed = np.bincount(gs.window, weights=gs.failed, minlength=n_win).astype(np.int64).tolist()
    server = np.bincount(gs.window, weights=gs.server_errors, minlength=n_win).astype(np.int64).tolist()
    sum_ns = np.zeros(n_win, dtype=np.int64)
    np.add.at(sum_ns, gs.window, gs.sum_ns)  # integer adds: exact whatever the magnitudes
    run_window = gs.window[gs.run_group]
    key_window, key_ms, key_counts = pair_totals(run_window, gs.run_ms, gs.run_counts)
    bounds = np.searchsorted(key_window, np.arange(n_win + 1)).tolist()
    sums_l = sum_ns.tolist()
    line_window = None if v.all_exact else gs.window[gs.inverse]
    for w in range(n_win):
        if count[w] == 0:
            continue
        k = (FLEET_CUSTOMER, gs.first_window + w)
        agg = seg.aggs.get(k)
        if agg is None:
            agg = seg.aggs[k] = Aggregate(0, 0, 0, LatencyHistogram(level.max_exact), 0)
        a, b = bounds[w], bounds[w + 1]
        agg.add(count[w], failed[w], server[w], sums_l[w], key_ms[a:b], key_counts[a:b])
        if line_window is not None:
            fine = part.durations[(line_window == w) & ~v.exact]
            if len(fine):
                agg.hist.add(fine)
        seg.dirty.add(k)


def _fleet_tables(seg: SegmentAggregates, windows: set[int]) -> dict[int, tuple[str, ...]]:
    """The packed per-customer tables of the `*` points of `windows`: every customer aggregate of the
    segment in that window, as it stands (cumulative, like the point). Built when points are written
    (about once a second), from the state, not per line."""
    out = {}
    for w in windows:
        aggs = [(c, seg.aggs[(c, w)]) for c in seg.customers.get(w, ())]
        out[w] = fleet_table.encode_parts([(c, a.count, a.failed, a.server_errors, a.sum_ns) for c, a in aggs])
    return out


def points(seg: SegmentAggregates, level: RollupLevel, keys: set[tuple[str, int]]) -> list[RollupPoint]:
    out = []
    tables = _fleet_tables(seg, {w for c, w in keys if c == FLEET_CUSTOMER})
    for customer, window in keys:
        agg = seg.aggs[(customer, window)]
        out.append(
            RollupPoint(
                level.measurement,
                customer,
                window * level.window_ns + seg.ident_ns,
                level.window_ns,
                agg.count,
                agg.failed,
                agg.server_errors,
                agg.sum_ns,
                agg.hist.encode(),
                tables.get(window, ()) if customer == FLEET_CUSTOMER else (),
            )
        )
    return out
