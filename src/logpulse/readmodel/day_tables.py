"""Whole-day histograms of many customers packed in numpy arrays, and the exact median and p99 of every
customer over any set of days in one vectorised pass.

The fleet sorted by median or p99 needs every customer's quantiles over a month: ranking 8 M
millisecond entries by sorting them costs ~0.4 s. Here each day keeps, beside its entries (sorted by
customer, then millisecond), every customer's request counts on a fixed coarse grid of `GRID_BINS`
log-spaced millisecond bins. Summing a customer's coarse rows over the days locates the bin holding
each wanted rank; only the entries of that bin, across the days, are gathered and ranked, in a dense
(query × millisecond) table. The ranks are `merge._exact_ranks`' (and `LatencyHistogram`'s): median =
mean of the two middle values (the middle one for odd n), p99 = value at rank floor(0.99·n + 0.5),
at least 1; the tests check equality with `merge.merge` on random histograms.

A customer any of whose rows of a day has no exact histogram is kept with `exact=False` and no
entries: its quantiles come from `merge` over its rollup rows (the caller's fallback), which is what
decides "approximate" and re-reads finer windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.merge import quantile_ranks
from logpulse.storage.histogram import decode_many

BoolArray = npt.NDArray[np.bool_]
Counts = npt.NDArray[np.uint16] | npt.NDArray[np.int32] | npt.NDArray[np.int64]
KEY_MAX = (1 << 32) - 1
"""Milliseconds are stored as uint32: durations are bounded by MAX_DURATION_S (a day by default)."""
GRID: IntArray = np.unique(
    np.concatenate(([0], np.geomspace(1, 60_000, 232), np.geomspace(60_000, KEY_MAX + 1, 24)[1:])).astype(np.int64)
)
"""Coarse bin edges in ms: 0, then log-spaced, about 4.8 % wide up to a minute (where medians and p99s
are) and coarser beyond, up to 2**32 (the last edge, exclusive)."""
N_BINS = len(GRID) - 1
DENSE_WIDTH = 1 << 16
"""Bins up to this many milliseconds wide are ranked through a dense table; wider ones (durations of
over a quarter-hour) by sorting their few entries."""


@dataclass(frozen=True)
class DayTable:
    """One day's rows of many customers: per customer (sorted codes) its summed request count, whether
    every row was exact, its entries (milliseconds ascending, from `start[i]` to `start[i + 1]`), its
    requests per grid bin and where each bin's entries begin (relative to `start[i]`)."""

    codes: IntArray  # distinct customer codes, ascending
    count: IntArray  # per customer: the rows' summed `count` field
    exact: BoolArray  # per customer: every row had an exact histogram
    start: IntArray  # len(codes) + 1 entry offsets
    key: npt.NDArray[np.uint32]  # entries: milliseconds
    weight: Counts  # entries: requests of that millisecond
    coarse: Counts  # (len(codes), N_BINS) requests per grid bin
    bins: Counts  # (len(codes), N_BINS + 1) first entry of each bin, from the customer's start

    @property
    def entries(self) -> int:
        return len(self.key)

    @classmethod
    def empty(cls) -> DayTable:
        none = np.zeros(0, np.int64)
        grid = np.zeros((0, N_BINS), np.uint16)
        return cls(none, none, np.zeros(0, bool), np.zeros(1, np.int64), np.zeros(0, np.uint32), none, grid, grid)

    @classmethod
    def build(cls, codes: IntArray, counts: IntArray, texts: list[str | None]) -> DayTable:
        """From rollup rows (customer code, `count` field, histogram text), several rows per customer
        allowed (the sources of a window not yet compacted): their entries are added up."""
        if not len(codes):
            return cls.empty()
        distinct, row_pos = np.unique(codes, return_inverse=True)
        n = len(distinct)
        count = np.bincount(row_pos, weights=counts, minlength=n).astype(np.int64)
        present = [i for i, t in enumerate(texts) if t]
        row_exact, entry_row, key, weight = decode_many([texts[i] or "" for i in present])
        exact_rows = np.zeros(len(texts), bool)
        exact_rows[present] = row_exact
        pos = row_pos[np.asarray(present, np.int64)[entry_row]] if len(present) else entry_row
        exact = np.bincount(row_pos[~exact_rows], minlength=n) == 0
        exact[pos[(key < 0) | (key > KEY_MAX)]] = False
        keep = exact[pos]
        lifted = (pos[keep] << 32) | key[keep]
        order = np.argsort(lifted, kind="stable")
        lifted, w = lifted[order], weight[keep][order]
        if len(lifted):
            first = np.flatnonzero(np.diff(lifted, prepend=lifted[0] - 1))
            lifted, w = lifted[first], np.add.reduceat(w, first)
        return cls.of(distinct, count, exact, lifted >> 32, lifted & KEY_MAX, w)

    @classmethod
    def of(
        cls, codes: IntArray, count: IntArray, exact: BoolArray, pos: IntArray, key: IntArray, w: IntArray
    ) -> DayTable:
        """From entries sorted by (customer position, millisecond), without repeats."""
        n = len(codes)
        start = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(pos, minlength=n), out=start[1:])
        lifted = (pos << 32) | key
        edges = np.searchsorted(lifted, (np.arange(n, dtype=np.int64)[:, None] << 32) + GRID[None, :])
        bins = edges - start[:-1, None]
        coarse = np.bincount(
            pos * N_BINS + np.searchsorted(GRID, key, side="right") - 1, weights=w, minlength=n * N_BINS
        ).reshape(n, N_BINS)
        return cls(codes, count, exact, start, key.astype(np.uint32), _narrow(w), _narrow(coarse), _narrow(bins))

    def without(self, codes: IntArray) -> DayTable:
        """These rows less those of `codes`."""
        keep = ~np.isin(self.codes, codes)
        if keep.all():
            return self
        lens = np.diff(self.start)
        on = np.repeat(keep, lens)
        start = np.zeros(int(keep.sum()) + 1, np.int64)
        np.cumsum(lens[keep], out=start[1:])
        return DayTable(
            self.codes[keep],
            self.count[keep],
            self.exact[keep],
            start,
            self.key[on],
            self.weight[on],
            self.coarse[keep],
            self.bins[keep],
        )

    @staticmethod
    def join(a: DayTable, b: DayTable) -> DayTable:
        """The rows of two tables of the same day without customers in common."""
        if not len(a.codes) or not len(b.codes):
            return a if len(a.codes) else b
        order = np.argsort(np.concatenate([a.codes, b.codes]), kind="stable")
        lens = np.concatenate([np.diff(a.start), np.diff(b.start)])[order]
        source = np.concatenate([a.start[:-1], b.start[:-1] + a.entries])[order]
        start = np.zeros(len(order) + 1, np.int64)
        np.cumsum(lens, out=start[1:])
        idx = np.repeat(source - start[:-1], lens) + np.arange(int(start[-1]))

        def both(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.concatenate([x.astype(np.int64), y.astype(np.int64)])

        return DayTable(
            np.concatenate([a.codes, b.codes])[order],
            np.concatenate([a.count, b.count])[order],
            np.concatenate([a.exact, b.exact])[order],
            start,
            np.concatenate([a.key, b.key])[idx],
            _narrow(both(a.weight, b.weight)[idx]),
            _narrow(both(a.coarse, b.coarse)[order]),
            _narrow(both(a.bins, b.bins)[order]),
        )

    @classmethod
    def fold(cls, tables: list[DayTable]) -> DayTable:
        """One table holding every entry of the tables, a customer's requests of the same millisecond
        added up: its counts, exactness and ranks are those of the tables together (`quantiles`), so
        days that no longer change are ranked as one table beside the ones that do. Each table's
        entries are sorted, so a stable sort of their concatenation merges sorted runs (~0.5 s of CPU
        for 29 days of 1,200 customers: done once per set of such days, off the answers' path)."""
        tables = [t for t in tables if len(t.codes)]
        if len(tables) <= 1:
            return tables[0] if tables else cls.empty()
        codes = np.unique(np.concatenate([t.codes for t in tables]))
        n = len(codes)
        count = np.zeros(n, np.int64)
        exact = np.ones(n, bool)
        lifted_parts: list[IntArray] = []
        for t in tables:
            at = np.searchsorted(codes, t.codes)
            count[at] += t.count
            exact[at] &= t.exact
            lifted_parts.append((np.repeat(at, np.diff(t.start)) << 32) | t.key.astype(np.int64))
        lifted = np.concatenate(lifted_parts)
        order = np.argsort(lifted, kind="stable")
        lifted = lifted[order]
        w = np.concatenate([t.weight.astype(np.int64) for t in tables])[order]
        if len(lifted):
            first = np.flatnonzero(np.diff(lifted, prepend=lifted[0] - 1))
            lifted, w = lifted[first], np.add.reduceat(w, first)
        return cls.of(codes, count, exact, lifted >> 32, lifted & KEY_MAX, w)

    def nbytes(self) -> int:
        arrays = (self.codes, self.count, self.exact, self.start, self.key, self.weight, self.coarse, self.bins)
        return sum(a.nbytes for a in arrays)


def _narrow(values: np.ndarray) -> Counts:
    """Non-negative counts as uint16 when they all fit (a customer-day's counts mostly do), else int32 or int64."""
    top = int(values.max()) if values.size else 0
    if top < 2**16:
        return values.astype(np.uint16)
    return values.astype(np.int32) if top < 2**31 else values.astype(np.int64)


@dataclass
class Quantiles:
    """Per customer code (the union of the tables' codes, ascending): requests, exactness and quantiles
    (seconds; NaN where the customer has no exact entries)."""

    codes: IntArray
    count: IntArray
    exact: BoolArray
    median: npt.NDArray[np.float64]
    p99: npt.NDArray[np.float64]


def quantiles(tables: list[DayTable]) -> Quantiles:
    """Every customer's exact median and p99 over the union of the tables' entries (module docstring)."""
    tables = [t for t in tables if len(t.codes)]
    codes = np.unique(np.concatenate([t.codes for t in tables])) if tables else np.zeros(0, np.int64)
    n = len(codes)
    count = np.zeros(n, np.int64)
    exact = np.ones(n, bool)
    coarse = np.zeros((n, N_BINS), np.int64)
    where = [np.searchsorted(codes, t.codes) for t in tables]
    for t, at in zip(tables, where, strict=True):
        count[at] += t.count
        exact[at] &= t.exact
        if len(at) == n:  # the customer is there every day: no scatter
            coarse += t.coarse
        else:
            coarse[at] += t.coarse
    median = np.full(n, np.nan)
    p99 = np.full(n, np.nan)
    totals = coarse.sum(axis=1)
    ranked = np.flatnonzero(totals > 0)
    if len(ranked):
        ranks = quantile_ranks(totals[ranked])
        cum = np.cumsum(coarse[ranked], axis=1)
        bins = (cum[None, :, :] < ranks[:, :, None]).sum(axis=2)  # first bin reaching each rank
        before = np.where(bins > 0, np.take_along_axis(cum[None], np.maximum(bins - 1, 0)[:, :, None], 2)[..., 0], 0)
        # queries customer by customer (its three bins ascending): every search below is over sorted needles
        q_bin, q_rank = bins.T.ravel(), (ranks - before).T.ravel()
        q_code = np.repeat(codes[ranked], 3)
        ms = _ranked_in_bins(tables, q_code, q_bin, q_rank)
        values = ms.reshape(len(ranked), 3).T / 1000.0
        median[ranked] = (values[0] + values[1]) / 2
        p99[ranked] = values[2]
    return Quantiles(codes, count, exact, median, p99)


def _ranked_in_bins(tables: list[DayTable], q_code: IntArray, q_bin: IntArray, q_rank: IntArray) -> IntArray:
    """For each query (customer code, grid bin, rank within the bin), the millisecond at that rank among
    the customer's entries in the bin, across every table."""
    nq = len(q_code)
    parts_q: list[IntArray] = []
    parts_key: list[IntArray] = []
    parts_w: list[IntArray] = []
    for t in tables:
        at = np.minimum(np.searchsorted(t.codes, q_code), len(t.codes) - 1)
        first = t.start[at]
        lo = first + t.bins[at, q_bin]
        lens = np.where(t.codes[at] == q_code, first + t.bins[at, q_bin + 1] - lo, 0)
        total = int(lens.sum())
        if not total:
            continue
        starts = np.cumsum(lens) - lens
        idx = np.repeat(lo - starts, lens) + np.arange(total)
        parts_q.append(np.repeat(np.arange(nq), lens))
        parts_key.append(t.key[idx].astype(np.int64))
        parts_w.append(t.weight[idx].astype(np.int64))
    q = np.concatenate(parts_q)
    key = np.concatenate(parts_key)
    w = np.concatenate(parts_w)
    out = np.zeros(nq, np.int64)
    width = GRID[q_bin + 1] - GRID[q_bin]
    dense = width <= DENSE_WIDTH
    on = dense[q]
    if on.any():  # a dense (query × millisecond) table: one bincount, one cumsum, one searchsorted
        cells = np.where(dense, width, 0)
        offset = np.cumsum(cells) - cells
        table = np.bincount(offset[q[on]] + key[on] - GRID[q_bin[q[on]]], weights=w[on], minlength=int(cells.sum()))
        running = np.cumsum(table)
        before = np.where(offset > 0, running[np.maximum(offset - 1, 0)], 0)
        d = np.flatnonzero(dense)
        found = np.searchsorted(running, before[d] + q_rank[d], side="left")
        out[d] = GRID[q_bin[d]] + found - offset[d]
    if not dense.all():  # bins minutes wide: sort their (few) entries
        off = ~on
        order = np.lexsort((key[off], q[off]))
        key_sorted = key[off][order]
        running = np.cumsum(w[off][order])
        per_q = np.bincount(q[off], weights=w[off], minlength=nq).astype(np.int64)
        base = np.cumsum(per_q) - per_q
        s = np.flatnonzero(~dense)
        out[s] = key_sorted[np.searchsorted(running, base[s] + q_rank[s], side="left")]
    return out
