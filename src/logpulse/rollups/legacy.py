"""Recovery snapshots taken while a segment's rollups were one Python object per (customer, window):
the classes they unpickle as, and their conversion to columns (`segment.py`), so that a processor
upgraded with a recovery store resumes where it stopped.

The conversion also completes the older snapshots those objects may come from: aggregates pickled
before `server_errors` existed keep it unknown (their points are written without the field rather
than with a partial 5xx count), and a segment pickled before the fleet-wide aggregates gets them
rebuilt from its customers' aggregates (which hold every line of the segment so far).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from logpulse.rollups.segment import SegmentColumns
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel


@dataclass(slots=True)
class Aggregate:
    """One (customer, window) of an object-layout snapshot."""

    count: int
    failed: int
    sum_ns: int
    hist: LatencyHistogram
    server_errors: int | None  # None: unknown


@dataclass(slots=True)
class SegmentAggregates:
    """One level's segment of an object-layout snapshot."""

    index: int
    ident_ns: int
    aggs: dict[tuple[str, int], Aggregate] = field(default_factory=dict)
    customers: dict[int, list[str]] = field(default_factory=dict)
    dirty: set[tuple[str, int]] = field(default_factory=set)


def _rebuild_fleet(seg: SegmentAggregates, level: RollupLevel) -> None:
    """The fleet-wide aggregates of a segment pickled without them, from its customers', marked for
    the next flush so the `*` points of this identity are complete."""
    for (_, window), agg in list(seg.aggs.items()):
        k = (FLEET_CUSTOMER, window)
        fleet = seg.aggs.get(k)
        if fleet is None:
            fleet = seg.aggs[k] = Aggregate(0, 0, 0, LatencyHistogram(level.max_exact), 0)
            seg.dirty.add(k)
        fleet.count += agg.count
        fleet.failed += agg.failed
        fleet.sum_ns += agg.sum_ns
        fleet.server_errors = (
            None
            if fleet.server_errors is None or agg.server_errors is None
            else fleet.server_errors + agg.server_errors
        )
        fleet.hist.merge(agg.hist)


def to_columns(seg: SegmentAggregates, level: RollupLevel) -> SegmentColumns:
    """The columnar state holding the same aggregates, dirty marks and identity."""
    for agg in seg.aggs.values():
        if not hasattr(agg, "server_errors"):
            agg.server_errors = None
    if seg.aggs and not any(c == FLEET_CUSTOMER for c, _ in seg.aggs):
        _rebuild_fleet(seg, level)
    cols = SegmentColumns(seg.index, seg.ident_ns)
    items = list(seg.aggs.items())
    if not items:
        return cols
    numbers = cols.customer_numbers([c for (c, _), _ in items])
    windows = np.asarray([w for (_, w), _ in items], dtype=np.int64)
    rows = cols.rows_for(SegmentColumns.keys_of(numbers, windows))
    sums = [a.sum_ns for _, a in items]
    cols.add(
        rows,
        np.asarray([a.count for _, a in items], dtype=np.int64),
        np.asarray([a.failed for _, a in items], dtype=np.int64),
        np.asarray([a.server_errors or 0 for _, a in items], dtype=np.int64),
        np.asarray(sums, dtype=object),
        sum(sums),
    )
    unknown = np.asarray([a.server_errors is None for _, a in items], dtype=np.bool_)
    cols.server[rows[unknown]] = -1
    for row, (_, agg) in zip(rows.tolist(), items, strict=True):
        cols.hist.add_histogram(row, agg.hist)
    cols.clear_dirty()
    dirty = np.asarray([k in seg.dirty for k, _ in items], dtype=np.bool_)
    cols.dirty[rows[dirty]] = True
    return cols
