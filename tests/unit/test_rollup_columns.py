"""The columnar segment state writes byte for byte the points the per-object state wrote
(`rollups_by_object.py`): counts, failed, server errors, sums, histogram encodings and fleet tables,
for random parts of many shapes — one or two requests per customer-window, busy windows whose
histograms are compressed, windows past `max_exact` distinct values, durations finer than a
millisecond, zeros — flushed at random moments and through a snapshot."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import rollups_by_object as by_object
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.model import RollupPoint
from logpulse.rollups.aggregate import LineValues, RollupPart, aggregate, rollup_rows
from logpulse.rollups.segment import CustomerIndex, SegmentColumns
from logpulse.storage import histogram_runs
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import ROLLUP_LEVELS, RollupLevel, rollup_line, rollup_rows_lines

DAY_NS = 86400 * 10**9
BASE_NS = 20_000 * DAY_NS + 12_345


def random_part(rng: np.random.Generator, start: int, shape: str) -> RollupPart:
    pool = ["a", "b", "c-1", "d.e", *(f"tail{i}" for i in range(300))]
    n = int(rng.integers(1, 6000 if shape == "wide" else 400))
    customers = sorted(set(rng.choice(pool, size=int(rng.integers(1, 40))).tolist()))
    codes = np.sort(rng.integers(0, len(customers), n)).astype(np.int64)
    spread = int(rng.choice([900, 7200, 3 * 86400])) * 10**9
    times = BASE_NS + rng.integers(0, spread, n).astype(np.int64)
    if shape == "wide":  # one customer-window with more distinct milliseconds than max_exact
        codes[:] = 0
        times[:] = BASE_NS
        ms = rng.permutation(20_000)[:n]
        texts = [f"{m / 1000:.3f}" for m in ms.tolist()]
    else:
        ms = rng.choice([0, 1, 2, 17, 250, 999, 1000, 2500, 60_000], size=n) + rng.integers(0, 40, n)
        texts = [f"{m / 1000:.3f}" for m in ms.tolist()]
        if shape == "fine":
            for i in rng.integers(0, n, max(1, n // 20)).tolist():
                texts[i] = f"{rng.integers(1, 10**7) / 1e6:.6f}"
    status = rng.choice([200, 204, 404, 429, 500, 503], size=n)
    return RollupPart(
        7,
        start,
        start + 100,
        customers,
        codes,
        times,
        status >= 400,
        status >= 500,
        np.asarray([float(t) for t in texts], dtype=np.float64),
    )


def as_tuples(pts: list[RollupPoint]) -> list[tuple[object, ...]]:
    return sorted(dataclasses.astuple(p) for p in pts)


def written_lines(seg: SegmentColumns, level: RollupLevel) -> list[str]:
    """The line protocol the sink writes for the segment's dirty rows (as `rollup_rows_lines` builds it)."""
    rows = rollup_rows(seg, level)
    return [] if rows is None else rollup_rows_lines(rows)


def points(seg: SegmentColumns, level: RollupLevel) -> list[RollupPoint]:
    rows = rollup_rows(seg, level)
    return [] if rows is None else [rows.point(i) for i in range(len(rows))]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32),
    st.lists(st.sampled_from(["sparse", "sparse", "fine", "wide"]), min_size=1, max_size=6),
    st.lists(st.booleans(), min_size=6, max_size=6),
    st.integers(0, 5),
    st.sampled_from([1, histogram_runs.COMPACT_FROM]),
    st.sampled_from([3, histogram_runs.ENCODE_ROWS]),
)
def test_columns_write_the_points_of_one_object_per_customer_window(
    seed: int, shapes: list[str], flushes: list[bool], snapshot_at: int, compact_from: int, encode_rows: int
) -> None:
    default_compact_from, default_encode_rows = histogram_runs.COMPACT_FROM, histogram_runs.ENCODE_ROWS
    histogram_runs.COMPACT_FROM = compact_from  # 1: runs are combined at every add
    histogram_runs.ENCODE_ROWS = encode_rows  # 3: histograms encoded a few rows at a time
    try:
        check_against_objects(seed, shapes, flushes, snapshot_at)
    finally:
        histogram_runs.COMPACT_FROM, histogram_runs.ENCODE_ROWS = default_compact_from, default_encode_rows


def check_against_objects(seed: int, shapes: list[str], flushes: list[bool], snapshot_at: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [random_part(rng, 100 * i, shape) for i, shape in enumerate(shapes)]
    for level in ROLLUP_LEVELS:
        old = by_object.SegmentAggregates(0, 4242)
        new = SegmentColumns(0, 4242)
        for i, (part, flush) in enumerate(zip(parts, flushes, strict=False)):
            values = LineValues.of(part)
            by_object.aggregate(old, level, part, values)
            aggregate(new, level, part, values)
            if i == snapshot_at:
                new = pickle.loads(pickle.dumps(new))
            if flush or i == len(parts) - 1:
                expected = by_object.points(old, level, old.dirty)
                old.dirty = set()
                got = points(new, level)
                lines = written_lines(new, level)
                new.clear_dirty()
                assert as_tuples(got) == as_tuples(expected), level.measurement
                assert sorted(lines) == sorted(map(rollup_line, expected)), level.measurement
        assert rollup_rows(new, level) is None  # nothing dirty after the last flush


def test_a_row_past_max_exact_and_a_fine_row_are_written_approximate() -> None:
    """The encodings the two rules produce, checked against the histogram class directly."""
    rng = np.random.default_rng(3)
    part = random_part(rng, 0, "wide")
    level = ROLLUP_LEVELS[0]
    seg = SegmentColumns(0, 0)
    aggregate(seg, level, part, LineValues.of(part))
    written = {p.customer_id: p.hist for p in points(seg, level)}
    whole = LatencyHistogram(level.max_exact)
    whole.add(part.durations)
    assert len(part.durations) <= level.max_exact or not whole.exact
    assert written[part.customers[0]] == whole.encode()


def test_sums_past_int64_stay_exact() -> None:
    """Two parts of 60,000 day-long requests in one customer-window: 1.04e19 ns, past int64. The sums
    column turns to Python integers before any row can overflow, and holds what the objects held."""
    n = 60_000
    level = ROLLUP_LEVELS[2]
    old = by_object.SegmentAggregates(0, 0)
    new = SegmentColumns(0, 0)
    for start in (0, 100):
        part = RollupPart(
            7,
            start,
            start + 100,
            ["busy"],
            np.zeros(n, dtype=np.int64),
            np.full(n, BASE_NS, dtype=np.int64),
            np.zeros(n, dtype=np.bool_),
            np.zeros(n, dtype=np.bool_),
            np.full(n, 86_399.999, dtype=np.float64),
        )
        values = LineValues.of(part)
        by_object.aggregate(old, level, part, values)
        aggregate(new, level, part, values)
    # (the points themselves cannot be written: the fleet table packs sums as int64, see fleet_table.encode)
    rows = new.dirty_rows()
    customers, windows = new.customers_windows(rows)
    keys = zip([new.names[c] for c in customers.tolist()], windows.tolist(), strict=True)
    got = dict(zip(keys, new.sum_ns[rows].tolist(), strict=True))
    assert got == {k: a.sum_ns for k, a in old.aggs.items()}
    assert set(got.values()) == {2 * n * 86_399_999_000_000}


def test_a_segment_numbers_customers_by_the_file_index_as_by_its_own_names() -> None:
    """Looked up through the file's `CustomerIndex` (once per part for every level), a segment gives
    each customer the number its own lookup gives, new ones in order, also once restored from a
    snapshot (which does not hold the index's table) or given another index."""
    index = CustomerIndex()
    by_index, own = SegmentColumns(0, 0), SegmentColumns(0, 0)
    for step, customers in enumerate((["x", "y"], ["y", "z", "x"], ["w"], ["z", "v", "w", "u"], ["u", "t"])):
        got = by_index.customer_numbers_by(customers, index.of(customers), index)
        assert got.tolist() == own.customer_numbers(customers).tolist()
        if step == 1:
            by_index = pickle.loads(pickle.dumps(by_index))
        if step == 3:
            index = CustomerIndex()
    assert by_index.names == own.names == ["x", "y", "z", "w", "v", "u", "t"]
