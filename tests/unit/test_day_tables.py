"""The replica's rank search (`day_tables.quantiles`) against `merge.merge`, the read model's definition
of a merged histogram's median and p99, on random customer-day histograms."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpulse.readmodel.day_tables import DENSE_WIDTH, GRID, DayTable, Quantiles, quantiles
from logpulse.readmodel.merge import Decoded, merge
from logpulse.readmodel.windows import Windows
from logpulse.storage.histogram import LatencyHistogram

Row = tuple[int, int, dict[int, int]]  # customer, day, {ms: count}

# milliseconds that tie often (a few values), spread (thousands), and land in bins wider than DENSE_WIDTH
millis = st.one_of(
    st.integers(0, 5),
    st.integers(0, 3_000),
    st.integers(1_000_000, 90_000_000),
)
histograms = st.dictionaries(millis, st.one_of(st.integers(1, 3), st.integers(1, 10**9)), min_size=1, max_size=12)
rows = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9), histograms), min_size=1, max_size=40)


def encoded(h: dict[int, int]) -> str:
    hist = LatencyHistogram()
    keys = np.asarray(sorted(h), np.int64)
    hist.add_ms_counts(keys, np.asarray([h[k] for k in keys.tolist()], np.int64))
    return hist.encode()


def by_merge(data: list[Row]) -> dict[int, tuple[float | None, float | None, int]]:
    """Per customer (median, p99, count) as `merge.merge` ranks its rows grouped by customer."""
    texts: list[str | None] = [encoded(h) for _, _, h in data]
    counts = np.asarray([sum(h.values()) for _, _, h in data], np.int64)
    w = Windows(np.zeros(len(data), np.int64), counts, np.zeros(len(data), np.int64), np.zeros(len(data)), texts, [])
    group = np.asarray([c for c, _, _ in data], np.int64)
    m = merge(w, Decoded.of(texts), group, 6)
    return {c: (m.median[c], m.p99[c], int(m.total[c])) for c in set(group.tolist())}


def tables_of(data: list[Row]) -> list[DayTable]:
    """One table per day of the rows."""
    out = []
    for day in sorted({d for _, d, _ in data}):
        mine = [(c, h) for c, d, h in data if d == day]
        out.append(
            DayTable.build(
                np.asarray([c for c, _ in mine], np.int64),
                np.asarray([sum(h.values()) for _, h in mine], np.int64),
                [encoded(h) for _, h in mine],
            )
        )
    return out


def by_tables(data: list[Row]) -> dict[int, tuple[float | None, float | None, int]]:
    q = quantiles(tables_of(data))
    assert q.exact.all()
    return {
        int(c): (
            None if np.isnan(q.median[i]) else float(q.median[i]),
            None if np.isnan(q.p99[i]) else float(q.p99[i]),
            int(q.count[i]),
        )
        for i, c in enumerate(q.codes)
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_rank_search_equals_merge(data: list[Row]) -> None:
    assert by_tables(data) == by_merge(data)


def test_many_days_of_many_customers_equal_merge() -> None:
    """A month of 300 customers with lognormal durations (the fleet view's shape), several rows per
    customer-day (sources not yet compacted), some customers absent on some days."""
    rng = np.random.default_rng(3)
    data: list[Row] = []
    for day in range(30):
        for c in range(300):
            if rng.random() < 0.1:
                continue
            for _ in range(int(rng.integers(1, 3))):
                ms = np.round(rng.lognormal(5.3, 0.9, int(rng.integers(1, 400)))).astype(np.int64)
                keys, counts = np.unique(ms, return_counts=True)
                data.append((c, day, dict(zip(keys.tolist(), counts.tolist(), strict=True))))
    texts: list[str | None] = [encoded(h) for _, _, h in data]
    counts = np.asarray([sum(h.values()) for _, _, h in data], np.int64)
    w = Windows(np.zeros(len(data), np.int64), counts, np.zeros(len(data), np.int64), np.zeros(len(data)), texts, [])
    m = merge(w, Decoded.of(texts), np.asarray([c for c, _, _ in data], np.int64), 300)
    tables = []
    for day in range(30):
        idx = [i for i, (_, d, _) in enumerate(data) if d == day]
        tables.append(DayTable.build(np.asarray([data[i][0] for i in idx]), counts[idx], [texts[i] for i in idx]))
    q = quantiles(tables)
    assert q.codes.tolist() == list(range(300))
    assert q.median.tolist() == m.median and q.p99.tolist() == m.p99 and q.count.tolist() == m.total.tolist()


def test_a_customer_with_an_approximate_or_missing_histogram_is_not_ranked() -> None:
    """Such a customer's quantiles are the caller's (merged as `approximate` or re-read finer)."""
    approximate = LatencyHistogram.from_values([0.001 * i for i in range(1, 5000)]).encode()
    assert approximate.startswith("1a")
    t = DayTable.build(
        np.asarray([1, 2, 3, 3]), np.asarray([4999, 7, 2, 1]), [approximate, None, encoded({5: 2}), encoded({9: 1})]
    )
    assert t.exact.tolist() == [False, False, True] and t.count.tolist() == [4999, 7, 3]
    q = quantiles([t])
    assert q.exact.tolist() == [False, False, True]
    assert np.isnan(q.median[:2]).all() and q.median[2] == 0.005 and q.p99[2] == 0.009


def test_tables_without_and_joined_keep_every_other_customer() -> None:
    one = DayTable.build(
        np.asarray([4, 1, 7]), np.asarray([2, 1, 3]), [encoded({3: 2}), encoded({8: 1}), encoded({2: 3})]
    )
    again = DayTable.build(np.asarray([4]), np.asarray([5]), [encoded({6: 5})])
    joined = DayTable.join(one.without(np.asarray([4])), again)
    assert joined.codes.tolist() == [1, 4, 7] and joined.count.tolist() == [1, 5, 3]
    q = quantiles([joined])
    assert q.median.tolist() == [0.008, 0.006, 0.002]
    assert joined.coarse.sum(axis=1).tolist() == [1, 5, 3]


def test_the_grid_is_increasing_and_has_wide_bins_for_the_sorting_path() -> None:
    assert (np.diff(GRID) > 0).all() and GRID[0] == 0 and GRID[-1] == 1 << 32
    assert (np.diff(GRID) > DENSE_WIDTH).any()


def same(a: Quantiles, b: Quantiles) -> bool:
    return (
        a.codes.tolist() == b.codes.tolist()
        and a.count.tolist() == b.count.tolist()
        and a.exact.tolist() == b.exact.tolist()
        and np.array_equal(a.median, b.median, equal_nan=True)
        and np.array_equal(a.p99, b.p99, equal_nan=True)
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.integers(0, 9))
def test_ranks_over_a_fold_of_some_days_beside_the_others_equal_ranks_over_every_day(data: list[Row], cut: int) -> None:
    tables = tables_of(data)
    folded = [DayTable.fold(tables[:cut]), *tables[cut:]]
    assert same(quantiles(folded), quantiles(tables))
    assert DayTable.fold(tables).coarse.sum() == sum(int(t.coarse.sum()) for t in tables)


def test_a_fold_keeps_a_customer_inexact_when_one_of_its_days_is() -> None:
    approximate = LatencyHistogram.from_values([0.001 * i for i in range(1, 5000)]).encode()
    first = DayTable.build(np.asarray([1, 2]), np.asarray([4999, 2]), [approximate, encoded({5: 2})])
    second = DayTable.build(np.asarray([1, 2, 3]), np.asarray([1, 1, 4]), [encoded({7: 1}), encoded({5: 1}), None])
    folded = DayTable.fold([first, second])
    assert folded.codes.tolist() == [1, 2, 3] and folded.count.tolist() == [5000, 3, 4]
    assert folded.exact.tolist() == [False, True, False]
    assert same(quantiles([folded]), quantiles([first, second]))
    assert DayTable.fold([]).entries == 0 and DayTable.fold([second]) is second
