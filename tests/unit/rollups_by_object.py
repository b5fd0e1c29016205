"""The rollup aggregation as it was written before the segment state became columns: one Python
object and one `LatencyHistogram` per (customer, window). Kept as the oracle that the columnar state
(`logpulse.rollups.segment`) must reproduce byte for byte: same counts, sums, tables and encodings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logpulse.model import RollupPoint
from logpulse.rollups.aggregate import LineValues, RollupPart, pair_totals, part_groups
from logpulse.rollups.legacy import Aggregate, SegmentAggregates
from logpulse.storage import fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel


def _add(
    agg: Aggregate,
    count: int,
    failed: int,
    server_errors: int,
    sum_ns: int,
    ms: npt.NDArray[np.int64],
    ms_counts: npt.NDArray[np.int64],
) -> None:
    """Add a group of lines: its numbers and the (millisecond, count) runs of its exact durations."""
    agg.count += count
    agg.failed += failed
    if agg.server_errors is not None:  # unknown stays unknown: never a partial 5xx count
        agg.server_errors += server_errors
    agg.sum_ns += sum_ns
    if len(ms):
        agg.hist.add_ms_counts(ms, ms_counts)


def aggregate(seg: SegmentAggregates, level: RollupLevel, part: RollupPart, v: LineValues) -> None:
    """Add a part's lines to a level's segment state (vectorised: a few numpy calls per part plus
    one small update per customer-window touched)."""
    g = part_groups(level, part, v)
    groups, span, wmin, inverse = g.groups, g.span, g.first_window, g.inverse
    counts, failed, server, sums = g.count, g.failed, g.server_errors, g.sum_ns
    run_group, run_ms, run_counts = g.run_group, g.run_ms, g.run_counts
    n_groups = len(groups)
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
        _add(agg, counts_l[g], failed_l[g], server_l[g], sums_l[g], run_ms[a:b], run_counts[a:b])
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
        _add(agg, count[w], failed[w], server[w], sums_l[w], key_ms[a:b], key_counts[a:b])
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
