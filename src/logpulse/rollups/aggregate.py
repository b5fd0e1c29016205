"""Aggregation: a parsed chunk's lines as columns (`RollupPart`), added to one level's segment state
(`segment.py`) per customer-window and fleet-wide (customer `*`), and the points written from that state.

Vectorised: a few numpy calls per part whatever the number of customer-windows it touches (no Python
object or call per customer-window), and the points' histograms encoded in bulk. The fleet-wide
aggregate is added from the customer-window groups and (millisecond, count) runs already computed,
not by bucketing the lines again. The identity rules the points obey are in `identity.py`.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logpulse.model import ParsedChunk, RollupRows
from logpulse.rollups.segment import CustomerIndex, Int64Array, SegmentColumns
from logpulse.storage import fleet_table
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


def rollup_part(parsed: ParsedChunk) -> tuple[str, RollupPart] | None:
    """Columns of a parsed chunk keyed by its file (the rollup state's key), or None if it has no lines:
    the parser's columns as they are (customers numbered, one entry per line), no step per customer."""
    r = parsed.requests
    n = len(r.times)
    if n == 0:
        return None
    file_key, start, end = parsed.span
    v = r.values()
    part = RollupPart(
        file_key, start, end, r.customers, r.codes, v.times, v.failed, v.server_errors, v.durations, parsed.path
    )
    return str(file_key), part


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


@dataclass(slots=True)
class PartGroups:
    """A part's lines grouped by (customer, window) of one level: the numbers of each group and the
    (group, millisecond, count) runs of the lines with exact durations, sorted by group."""

    groups: npt.NDArray[np.int64]  # per group: customer code * span + window - first window
    span: int  # windows from the part's first to its last
    first_window: int
    inverse: npt.NDArray[np.int64]  # per line: its group
    count: npt.NDArray[np.int64]
    failed: npt.NDArray[np.int64]
    server_errors: npt.NDArray[np.int64]
    sum_ns: npt.NDArray[np.int64]
    run_group: npt.NDArray[np.int64]
    run_ms: npt.NDArray[np.int64]
    run_counts: npt.NDArray[np.int64]


def part_groups(level: RollupLevel, part: RollupPart, v: LineValues) -> PartGroups:
    """Group a part's lines per customer-window of `level`: a counting pass, bincounts and one sort."""
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
    # (group, ms) runs of the exact lines: one sort of a combined key
    ex_groups, ex_ms = (inverse, v.ms) if v.all_exact else (inverse[v.exact], v.ms[v.exact])
    run_group, run_ms, run_counts = pair_totals(ex_groups, ex_ms)
    return PartGroups(groups, span, wmin, inverse, counts, failed, server, sums, run_group, run_ms, run_counts)


def aggregate(
    seg: SegmentColumns,
    level: RollupLevel,
    part: RollupPart,
    v: LineValues,
    known: tuple[Int64Array, CustomerIndex] | None = None,
) -> None:
    """Add a part's lines to a level's segment state, per customer-window and fleet-wide: a few numpy
    calls per part, whatever the number of customer-windows it touches. `known`: the part's customers'
    numbers in the file's `CustomerIndex` (looked up once for all levels)."""
    g = part_groups(level, part, v)
    group_window = g.groups % g.span + g.first_window
    numbers = seg.customer_numbers(part.customers) if known is None else seg.customer_numbers_by(part.customers, *known)
    rows = seg.rows_for(SegmentColumns.keys_of(numbers[g.groups // g.span], group_window))
    # at least the part's sum of durations in ns (each is rounded by at most half a millisecond)
    bound = int(float(part.durations.sum()) * 1e9 * (1 + 1e-6)) + 1_000_000 * len(v.ms)
    seg.add(rows, g.count, g.failed, g.server_errors, g.sum_ns, bound)
    seg.hist.add_ms(rows[g.run_group], g.run_ms, g.run_counts)
    fine = None if v.all_exact else ~v.exact
    if fine is not None:
        seg.hist.add_fine(rows[g.inverse[fine]], part.durations[fine])
    # fleet-wide (customer `*`): per window, the sums of its groups and the merge of their runs
    fleet_windows, group_fleet = np.unique(group_window, return_inverse=True)
    n_win = len(fleet_windows)
    fleet = seg.rows_for(SegmentColumns.keys_of(seg.customer_numbers([FLEET_CUSTOMER]).repeat(n_win), fleet_windows))
    fleet_sums = np.zeros(n_win, dtype=np.int64)
    np.add.at(fleet_sums, group_fleet, g.sum_ns)  # integer adds: exact
    seg.add(
        fleet,
        np.bincount(group_fleet, weights=g.count, minlength=n_win).astype(np.int64),
        np.bincount(group_fleet, weights=g.failed, minlength=n_win).astype(np.int64),
        np.bincount(group_fleet, weights=g.server_errors, minlength=n_win).astype(np.int64),
        fleet_sums,
        0,  # the same lines: `bound` already covers them
    )
    run_window, run_ms, run_counts = pair_totals(group_fleet[g.run_group], g.run_ms, g.run_counts)
    seg.hist.add_ms(fleet[run_window], run_ms, run_counts)
    if fine is not None:
        seg.hist.add_fine(fleet[group_fleet[g.inverse[fine]]], part.durations[fine])


def _fleet_tables(seg: SegmentColumns, windows: npt.NDArray[np.int64]) -> dict[int, tuple[str, ...]]:
    """The packed per-customer tables of the `*` points of `windows`: every customer row of the
    segment in that window, as it stands (cumulative, like the point), in customer order. Built when
    points are written (about once a second), from the state, not per line."""
    if len(windows) == 0:
        return {}
    all_rows = np.arange(seg.size, dtype=np.int64)
    customers, row_windows = seg.customers_windows(all_rows)
    fleet_number = seg.numbers[FLEET_CUSTOMER]
    rows = all_rows[np.isin(row_windows, windows) & (customers != fleet_number)]
    names = seg.names
    name_rank = np.empty(len(names), dtype=np.int64)
    name_rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    rows = rows[np.lexsort((name_rank[customers[rows]], row_windows[rows]))]
    win = row_windows[rows]
    bounds = np.flatnonzero(np.diff(win)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), len(rows)]
    row_names = list(map(names.__getitem__, customers[rows].tolist()))
    count, failed, server, sums = seg.count[rows], seg.failed[rows], seg.server[rows], seg.sum_ns[rows]
    out = {}
    for a, b in zip(starts, ends, strict=True):
        if a < b:
            out[int(win[a])] = fleet_table.encode_sorted(
                row_names[a:b], count[a:b], failed[a:b], server[a:b], sums[a:b]
            )
    return out


def _int64s(values: npt.NDArray[np.int64]) -> array[int]:
    """An int64 column as `array("q")`: 8 bytes a number, indexed as Python ints (`RollupRows`)."""
    out = array("q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return out


def rollup_rows(seg: SegmentColumns, level: RollupLevel) -> RollupRows | None:
    """The points of the segment's dirty rows (their cumulative values), as columns, ordered by
    series and time: grouped so, InfluxDB stored ~700,000 rollup points with half the CPU and in half
    the time as in the order rows were first seen, windows of all customers interleaved (measured
    writing the same lines both ways). None when no row is dirty."""
    rows = seg.dirty_rows()
    if len(rows) == 0:
        return None
    rows = rows[np.argsort(seg.key[rows])]  # customer number, then window: one series after the other
    customers, windows = seg.customers_windows(rows)
    fleet = np.flatnonzero(customers == seg.numbers[FLEET_CUSTOMER])
    tables = _fleet_tables(seg, windows[fleet])
    names, window_ns = seg.names, level.window_ns
    starts = windows * window_ns
    first = np.flatnonzero(np.concatenate(([True], customers[1:] != customers[:-1])))
    last = np.append(first[1:], len(rows)) - 1
    bounds = dict(
        zip(
            [names[c] for c in customers[first].tolist()],
            zip(starts[first].tolist(), (starts[last] + (window_ns - 1)).tolist(), strict=True),
            strict=True,
        )
    )
    sums = seg.sum_ns[rows]
    return RollupRows(
        level.measurement,
        window_ns,
        [names[c] for c in customers.tolist()],
        _int64s(starts + seg.ident_ns),
        _int64s(seg.count[rows]),
        _int64s(seg.failed[rows]),
        _int64s(seg.server[rows]),
        sums.tolist() if sums.dtype == object else _int64s(sums),
        seg.hist.encode(rows, level.max_exact),
        {i: tables[w] for i, w in zip(fleet.tolist(), windows[fleet].tolist(), strict=True)},
        bounds,
    )
