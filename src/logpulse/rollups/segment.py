"""The rollup state of one level's file segment, in columns: one row per (customer, window) touched,
numbers in arrays indexed by row, histograms as runs (`storage/histogram_runs.py`).

Why columns: a segment of a busy file holds a row for every customer in every window it sent in;
with 10,000 customers most rows hold one or two requests. As one Python object (and histogram)
per row, adding a part cost a dozen numpy calls per row and each row ~35 KB per customer of state
(profiled and measured); in columns a part costs a few numpy calls whatever the number of rows it
touches, and a row costs the bytes of its numbers and runs.

A row's key is `customer number << 32 | window + 2**31` (a customer's number is its position in the
segment's `names`; windows of any int64 nanosecond time fit in 32 bits). `sorted_keys`/`sorted_rows`
find the rows of a part's keys with one `searchsorted`; new rows are appended.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from logpulse.storage.histogram_runs import HistogramColumns, insert_sorted

Int64Array = npt.NDArray[np.int64]

WINDOW_BIAS = 1 << 31
KEY_SHIFT = 32
_LOW_MASK = (1 << KEY_SHIFT) - 1
_INT64_SUMS_BELOW = 1 << 62
"""While the durations added to a segment total less than this (ns), no row's sum can overflow int64;
past it the sums column holds Python integers (exact, slower: years of durations in one segment)."""
_COLUMNS = ("count", "failed", "server", "sum_ns", "dirty")


class CustomerIndex:
    """A file's customer ids numbered once for all levels (kept by the rollup step, not in snapshots):
    a part's customers are looked up here once, and each level's segment maps these numbers to its
    own with a numpy lookup, instead of a dictionary lookup per customer and level (memory-bound:
    with 10,000 customers ~6 % of the rollups-only ingest)."""

    __slots__ = ("numbers",)

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def of(self, customers: list[str]) -> Int64Array:
        return numbered(self.numbers, customers)


def numbered(numbers: dict[str, int], customers: list[str], names: list[str] | None = None) -> Int64Array:
    """Each customer's number in `numbers`, numbering the new ones in order (and appending them to
    `names`, the list those numbers index): one C-level lookup pass, then a Python step per new
    customer only (a part holds thousands of customers, few of them new)."""
    found = np.fromiter(map(numbers.get, customers, itertools.repeat(-1)), np.int64, len(customers))
    for i in np.flatnonzero(found < 0).tolist():
        c = customers[i]
        n = numbers.get(c)  # a customer twice among the new ones
        if n is None:
            n = numbers[c] = len(numbers)
            if names is not None:
                names.append(c)
        found[i] = n
    return found


class SegmentColumns:
    """One level's aggregates of one file segment, under one identity (see `identity.py`)."""

    __slots__ = (
        "_by_index",
        "_index",
        "count",
        "dirty",
        "failed",
        "hist",
        "ident_ns",
        "index",
        "key",
        "names",
        "numbers",
        "server",
        "size",
        "sorted_keys",
        "sorted_rows",
        "sum_bound",
        "sum_ns",
    )

    def __init__(self, index: int, ident_ns: int) -> None:
        self.index = index
        self.ident_ns = ident_ns
        self.names: list[str] = []
        self.numbers: dict[str, int] = {}
        self.size = 0
        self.key = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(0, dtype=np.int64)
        self.failed = np.zeros(0, dtype=np.int64)
        self.server = np.zeros(0, dtype=np.int64)
        """Status >= 500 per row; -1: unknown (restored from a snapshot older than the field)."""
        self.sum_ns: npt.NDArray[Any] = np.zeros(0, dtype=np.int64)
        self.dirty = np.zeros(0, dtype=np.bool_)
        self.sorted_keys = np.zeros(0, dtype=np.int64)
        self.sorted_rows = np.zeros(0, dtype=np.int64)
        self.hist = HistogramColumns()
        self.sum_bound = 0
        """At least the sum (ns) of every duration added: no row's sum exceeds it."""
        self._index: CustomerIndex | None = None
        self._by_index = np.zeros(0, dtype=np.int64)
        """This segment's number of each of `_index`'s customers (-1: none yet); not in snapshots."""

    def __getstate__(self) -> dict[str, Any]:
        n = self.size
        state = {name: getattr(self, name) for name in self.__slots__ if not name.startswith("_")}
        for name in (*_COLUMNS, "key"):
            state[name] = state[name][:n].copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._index = None
        self._by_index = np.zeros(0, dtype=np.int64)
        for name, value in state.items():
            setattr(self, name, value)

    # ----- rows ------------------------------------------------------------------------------

    def customer_numbers(self, customers: list[str]) -> Int64Array:
        """The segment's number of each customer id (`names` index), numbering the new ones."""
        return numbered(self.numbers, customers, self.names)

    def customer_numbers_by(self, customers: list[str], ids: Int64Array, index: CustomerIndex) -> Int64Array:
        """`customer_numbers(customers)`, given their numbers in the file's `index` (`ids`): a numpy
        lookup, then a step per customer new to this segment only."""
        if self._index is not index:
            self._index = index
            own = index.of(self.names)
            self._by_index = np.full(len(index.numbers), -1, dtype=np.int64)
            self._by_index[own] = np.arange(len(own), dtype=np.int64)
        if len(self._by_index) < len(index.numbers):
            grown = np.full(max(len(index.numbers), 2 * len(self._by_index)), -1, dtype=np.int64)
            grown[: len(self._by_index)] = self._by_index
            self._by_index = grown
        found = self._by_index[ids]
        missing = np.flatnonzero(found < 0)
        if len(missing):
            found[missing] = self.customer_numbers([customers[i] for i in missing.tolist()])
            self._by_index[ids[missing]] = found[missing]
        return found

    @staticmethod
    def keys_of(numbers: Int64Array, windows: Int64Array) -> Int64Array:
        return (numbers << KEY_SHIFT) | (windows + WINDOW_BIAS)

    def rows_for(self, keys: Int64Array) -> Int64Array:
        """The row of each (distinct) key, appending rows for keys not seen yet."""
        order = np.argsort(keys, kind="stable")
        k = keys[order]
        sk, sr = self.sorted_keys, self.sorted_rows
        pos = np.searchsorted(sk, k)
        found = pos < len(sk)
        found[found] = sk[pos[found]] == k[found]
        rows_sorted = np.empty(len(k), dtype=np.int64)
        rows_sorted[found] = sr[pos[found]]
        new = ~found
        m = int(new.sum())
        if m:
            new_rows = np.arange(self.size, self.size + m, dtype=np.int64)
            self._reserve(self.size + m)
            self.key[self.size : self.size + m] = k[new]
            rows_sorted[new] = new_rows
            self.sorted_keys, self.sorted_rows = insert_sorted(pos[new], (sk, k[new]), (sr, new_rows))
            self.size += m
        rows = np.empty(len(k), dtype=np.int64)
        rows[order] = rows_sorted
        return rows

    def _reserve(self, need: int) -> None:
        """Room for `need` rows: capacity doubles, new rows start at zero."""
        cap = len(self.count)
        if need <= cap:
            return
        grow = max(need, 2 * cap, 256) - cap
        for name in (*_COLUMNS, "key"):
            col = getattr(self, name)
            setattr(self, name, np.concatenate((col, np.zeros(grow, dtype=col.dtype))))

    # ----- adding ----------------------------------------------------------------------------

    def add(
        self,
        rows: Int64Array,
        count: Int64Array,
        failed: Int64Array,
        server: Int64Array,
        sum_ns: npt.NDArray[Any],
        bound_ns: int,
    ) -> None:
        """Add numbers to distinct rows; `bound_ns` is at least the sum of the durations added."""
        self.sum_bound += bound_ns
        if self.sum_bound >= _INT64_SUMS_BELOW and self.sum_ns.dtype != object:
            self.sum_ns = self.sum_ns.astype(object)
        self.count[rows] += count
        self.failed[rows] += failed
        known = self.server[rows]
        self.server[rows] = np.where(known >= 0, known + server, -1)  # unknown stays unknown
        self.sum_ns[rows] += sum_ns.astype(self.sum_ns.dtype)
        self.dirty[rows] = True

    # ----- reading ---------------------------------------------------------------------------

    def dirty_rows(self) -> Int64Array:
        return np.flatnonzero(self.dirty[: self.size]).astype(np.int64)

    def clear_dirty(self) -> None:
        self.dirty[:] = False

    def window_span(self) -> tuple[int, int]:
        """The first and the last window (number, start // window) any row of the segment is in."""
        windows = (self.key[: self.size] & _LOW_MASK) - WINDOW_BIAS
        return int(windows.min()), int(windows.max())

    def customers_windows(self, rows: Int64Array) -> tuple[Int64Array, Int64Array]:
        """(customer number, window) of rows."""
        keys = self.key[rows]
        return keys >> KEY_SHIFT, (keys & _LOW_MASK) - WINDOW_BIAS
