"""Adding up and ranking rollup rows per group (an interval, a day, a customer, or all of them).

Counts, failures and duration sums add up with `numpy.bincount`; the histograms of all rows are
decoded once (`histogram.decode_many`) and every group is ranked in the same numpy pass: per-group
histogram objects cost ~0.2 ms each, which is most of a 672-point series. Histograms are exact
millisecond maps where the input allows it, so median and p99 equal the sort-based definitions, and
every figure says `"quantiles": "exact"` or `"approximate"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.schemas import Figures
from logpulse.readmodel.windows import FloatArray, Windows
from logpulse.storage.histogram import LatencyHistogram, decode_many

NO_REQUESTS = Figures(
    total_requests=0,
    successful_requests=0,
    failed_requests=0,
    uptime=None,
    average_latency=None,
    median_latency=None,
    p99_latency=None,
)


def figures(
    total: int, failed: int, average: float | None, median: float | None, p99: float | None, *, exact: bool
) -> dict[str, Any]:
    """The fields of `Figures` by the definitions in docs/api.md, the one place they are written down: every
    answer (a day, an interval, a customer, the fleet, raw points) is built here."""
    if total <= 0:
        return NO_REQUESTS.model_dump()
    return {
        "total_requests": total,
        "successful_requests": total - failed,
        "failed_requests": failed,
        "uptime": (total - failed) / total * 100,
        "average_latency": average,
        "median_latency": median,
        "p99_latency": p99,
        "quantiles": "exact" if exact else "approximate",
    }


@dataclass
class Decoded:
    """The histogram entries of every row of a read, decoded once and ranked per grouping."""

    texts: list[str | None]
    exact: npt.NDArray[np.bool_]  # per row (a row without histogram counts as approximate)
    row: IntArray  # per entry
    key: IntArray
    count: IntArray

    @classmethod
    def of(cls, texts: list[str | None]) -> Decoded:
        present = [i for i, t in enumerate(texts) if t]
        exact, row, key, count = decode_many([texts[i] or "" for i in present])
        flags = np.zeros(len(texts), dtype=bool)
        flags[present] = exact
        return cls(texts, flags, np.asarray(present, dtype=np.int64)[row], key, count)


@dataclass
class Merged:
    """Counts, sums and quantiles of each group of rows (an interval, a day, a customer, or all)."""

    total: IntArray
    failed: IntArray
    seconds: FloatArray
    median: list[float | None]
    p99: list[float | None]
    exact: npt.NDArray[np.bool_]

    def nonempty(self) -> list[int]:
        return [int(g) for g in np.flatnonzero(self.total > 0)]

    def figures(self, g: int) -> dict[str, Any]:
        """The figures of group g."""
        total, failed = int(self.total[g]), int(self.failed[g])
        average = float(self.seconds[g]) / total if total > 0 else None
        return figures(total, failed, average, self.median[g], self.p99[g], exact=bool(self.exact[g]))


DENSE_CELLS = 4_000_000
"""Rank through a dense (group × millisecond) table up to this many cells (32 MB) when it holds at most
`DENSE_PER_ENTRY` cells per entry (a whole month: one group); else by sorting (the days of a month, 672
quarter-hours)."""
DENSE_PER_ENTRY = 2
"""A dense table costs ~9 ns a cell, sorting ~7 ns an entry already in order and ~25 ns an entry out
of order (measured): past ~2 cells per entry the table is the slower way. The days of a compacted
month (~700 distinct milliseconds a day, spread over ~3,700) hold ~5 cells per entry: 0.9 ms as a table,
0.2 ms sorted."""


def _exact_ranks(g: IntArray, key: IntArray, count: IntArray, n_groups: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """(groups with entries, their median, their p99) from exact millisecond entries of many groups.

    Ranks as `LatencyHistogram`: median = middle value (mean of the two middle ones for even n),
    p99 = value at rank floor(0.99·n + 0.5), at least 1. Each group's total is read off the running
    counts the ranking needs anyway, not summed in a pass of its own: a compacted month holds ~8,000
    entries, where every pass over them costs ~10-30 µs.
    """
    lo = int(key.min())
    span = int(key.max()) - lo + 1
    cells = n_groups * span
    if cells <= DENSE_CELLS and cells <= DENSE_PER_ENTRY * len(key):  # few groups, many entries each
        table = np.bincount(g * span + (key - lo), weights=count, minlength=cells)
        running = np.cumsum(table.reshape(n_groups, span), axis=1)
        n = running[:, -1].astype(np.int64)
        ranked = np.flatnonzero(n > 0)
        if len(ranked) < n_groups:
            running = running[ranked]
        nr = n[ranked]
        ranks = quantile_ranks(nr)
        # first millisecond whose running count reaches each rank: one searchsorted over all rows,
        # made one increasing sequence by lifting row i by i·(largest count + 1) (exact in float64)
        rows = np.arange(len(ranked))
        lift = rows * float(nr.max() + 1)
        flat = (running + lift[:, None]).ravel()
        idx = np.searchsorted(flat, ranks + lift, side="left") - rows * span
        values: FloatArray = (idx + lo) / 1000.0
    else:
        g, key, count = _in_order(g * span + (key - lo), g, key, count)
        running_all = np.cumsum(count)
        # running count at the end of each group (groups without entries end where the previous one did)
        ends = np.concatenate(([0], running_all))[np.searchsorted(g, np.arange(n_groups), side="right")]
        n = np.diff(ends, prepend=0)
        ranked = np.flatnonzero(n > 0)
        nr = n[ranked]
        values = key[np.searchsorted(running_all, (ends - n)[ranked] + quantile_ranks(nr), side="left")] / 1000.0
    return ranked, (values[0] + values[1]) / 2, values[2]


def _in_order(by: IntArray, g: IntArray, key: IntArray, count: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """The entries sorted by `by` (group, then key). Each row's keys come sorted, so a group of one row is
    in order already: when the groups come in order (rows read in time order, grouped by time) only the
    entries from the first group out of order to the last are sorted (a compacted month: the open day's
    rows, ~1,600 of ~21,000 entries), else all of them."""
    if len(by) < 2:
        return g, key, count
    down = np.flatnonzero(by[1:] < by[:-1])
    if not len(down):
        return g, key, count
    if (g[1:] >= g[:-1]).all():  # each group keeps its places: only the keys and counts inside move
        lo = int(np.searchsorted(g, g[down[0]], side="left"))
        hi = int(np.searchsorted(g, g[down[-1]], side="right"))
        o = lo + np.argsort(by[lo:hi], kind="stable")
        return g, np.concatenate((key[:lo], key[o], key[hi:])), np.concatenate((count[:lo], count[o], count[hi:]))
    order = np.argsort(by, kind="stable")
    return g[order], key[order], count[order]


def quantile_ranks(n: IntArray) -> IntArray:
    """Per group of n entries, the 1-based ranks of its two middle values and of its p99."""
    odd = n % 2 == 1
    p99 = np.clip(np.floor(n.astype(np.float64) * 99 / 100.0 + 0.5).astype(np.int64), 1, n)
    return np.stack((np.where(odd, n // 2 + 1, n // 2), n // 2 + 1, p99))


def merge(w: Windows, d: Decoded, group: IntArray, n_groups: int) -> Merged:
    """Add up and rank the rows of each group index in [0, n_groups) (rows outside are ignored).

    Groups whose rows all hold exact histograms are ranked together in one pass: entries sorted by
    (group, key), one running count, and each rank found by `searchsorted` — the same ranks as
    `LatencyHistogram.median`/`percentile(99)`, without a histogram object per group. Groups with an
    approximate row are merged with `LatencyHistogram.merge_many`.
    """
    ok = (group >= 0) & (group < n_groups)
    g_rows = np.where(ok, group, n_groups)  # n_groups: a scratch group for rows outside
    size = n_groups + 1
    total = np.bincount(g_rows, weights=w.count, minlength=size)[:n_groups].astype(np.int64)
    failed = np.bincount(g_rows, weights=w.failed, minlength=size)[:n_groups].astype(np.int64)
    seconds: FloatArray = np.bincount(g_rows, weights=w.seconds, minlength=size)[:n_groups].astype(np.float64)
    approximate_rows = np.bincount(g_rows[~d.exact], minlength=size)[:n_groups] > 0
    exact = ~approximate_rows

    median: list[float | None] = [None] * n_groups
    p99: list[float | None] = [None] * n_groups
    g_entries = g_rows[d.row]
    if ok.all() and d.exact.all():  # the usual case: every entry counts
        g, key, count = g_entries, d.key, d.count
    else:
        keep = g_entries < n_groups
        keep[keep] = exact[g_entries[keep]]
        g, key, count = g_entries[keep], d.key[keep], d.count[keep]
    if len(g):
        ranked, mid, p99s = _exact_ranks(g, key, count, n_groups)
        for i, m, p in zip(ranked.tolist(), mid.tolist(), p99s.tolist(), strict=True):
            median[i], p99[i] = m, p
    approximate_groups = approximate_rows & (total > 0)
    texts_of: dict[int, list[str]] = {}
    if approximate_groups.any():  # a Python pass over the rows only where a group needs one
        for t, gi in zip(d.texts, g_rows.tolist(), strict=True):
            if t and gi < n_groups and approximate_groups[gi]:
                texts_of.setdefault(gi, []).append(t)
    for i, texts in texts_of.items():
        h = LatencyHistogram.merge_many(texts)
        median[i], p99[i] = h.median(), h.percentile(99)
        exact[i] = h.exact
    return Merged(total, failed, seconds, median, p99, exact)


def raw_figures(row: dict[str, Any] | None) -> dict[str, Any]:
    """Figures of one row of the raw-points statements (COUNT, SUM(failed), MEAN, MEDIAN, PERCENTILE)."""
    if not row or not row.get("total"):
        return NO_REQUESTS.model_dump()
    total, failed = int(row["total"]), int(row["failed"] or 0)
    return figures(total, failed, row["average"], row["median"], row["p99"], exact=True)
