"""Many latency histograms kept as runs — (row, key, count) arrays sorted by row and key — and encoded
in bulk, for a writer that holds thousands of small histograms (the rollup step: one per customer and
window, most with one or two requests).

Why not one `LatencyHistogram` per row: each add, merge and encode of an object costs a dozen numpy
calls on arrays of one or two elements; with 10,000 customers that was over half of ingest time
(profiled). Here an add is an append, compaction is one sort over all rows, and encoding the small
exact histograms (the common case) is a handful of numpy calls for all of them plus one base64 per
row. Every encoding is byte for byte what `LatencyHistogram.encode()` gives for the same values added
in any order: exact while no duration finer than a millisecond was added and the distinct values fit
`max_exact`, else approximate (`histogram.py`); rows outside the bulk path go through that class.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logpulse.storage.histogram import (
    COMPRESS_FROM,
    MAX_ENCODED_CHARS,
    VERSION,
    WIDTHS,
    LatencyHistogram,
    bucket_index,
)

Int64Array = npt.NDArray[np.int64]
_EMPTY = np.zeros(0, dtype=np.int64)
COMPACT_FROM = 1 << 16
"""Appended runs are merged once there are this many (or more than a quarter of the merged ones)."""
ENCODE_ROWS = 1 << 14
"""Histograms encoded per piece (`HistogramColumns.encode`)."""


def _totals(rows: Int64Array, keys: Int64Array, counts: Int64Array) -> tuple[Int64Array, Int64Array, Int64Array]:
    """The sorted distinct (row, key) pairs with their summed counts (keys may be negative): one sort
    of a combined key while it fits in 62 bits, else a sort of the pairs."""
    if len(rows) == 0:
        return _EMPTY, _EMPTY, _EMPTY
    low = int(keys.min())
    base = int(keys.max()) - low + 1
    if (int(rows.max()) + 1) * base < 1 << 62:
        order = np.argsort(rows * base + (keys - low))
    else:
        order = np.lexsort((keys, rows))
    r, k, c = rows[order], keys[order], counts[order]
    new = np.ones(len(r), dtype=np.bool_)
    new[1:] = (r[1:] != r[:-1]) | (k[1:] != k[:-1])
    starts = np.flatnonzero(new)
    return r[starts], k[starts], np.add.reduceat(c, starts).astype(np.int64)


def insert_sorted(at: Int64Array, *columns: tuple[Int64Array, Int64Array]) -> list[Int64Array]:
    """`np.insert(column, at, values)` of each (column, values), for non-decreasing `at` (positions
    found by `searchsorted` of sorted values): the new places computed once for all columns, not
    sorted again by each `np.insert` (the merge of a segment's runs and keys is most of its cost)."""
    new_at = at + np.arange(len(at), dtype=np.int64)
    kept = np.ones(len(columns[0][0]) + len(at), dtype=np.bool_)
    kept[new_at] = False
    out = []
    for column, values in columns:
        merged = np.empty(len(kept), dtype=column.dtype)
        merged[new_at] = values
        merged[kept] = column
        out.append(merged)
    return out


class RunStore:
    """(row, key, count) runs of many histograms, sorted by row and key: appended as they come, merged
    on `compact` (the appended ones sorted among themselves, then placed by `searchsorted`)."""

    __slots__ = ("_pending", "_pending_runs", "counts", "keys", "rows")

    def __init__(self) -> None:
        self.rows: Int64Array = _EMPTY
        self.keys: Int64Array = _EMPTY
        self.counts: Int64Array = _EMPTY
        self._pending: list[tuple[Int64Array, Int64Array, Int64Array]] = []
        self._pending_runs = 0

    def __getstate__(self) -> tuple[Int64Array, Int64Array, Int64Array]:
        self.compact()
        return self.rows, self.keys, self.counts

    def __setstate__(self, state: tuple[Int64Array, Int64Array, Int64Array]) -> None:
        self.rows, self.keys, self.counts = state
        self._pending = []
        self._pending_runs = 0

    def add(self, rows: Int64Array, keys: Int64Array, counts: Int64Array) -> None:
        """Append runs; merged into the combined ones once they pass a quarter of them (so memory stays
        within 1.25x the distinct runs, and a merge costs one pass over the combined runs, no sort)."""
        if len(rows):
            self._pending.append((rows, keys, counts))
            self._pending_runs += len(rows)
            if self._pending_runs > max(len(self.rows) // 4, COMPACT_FROM):
                self.compact()

    def compact(self) -> None:
        if not self._pending:
            return
        rows, keys, counts = _totals(*(np.concatenate(col) for col in zip(*self._pending, strict=True)))
        self._pending = []
        self._pending_runs = 0
        if len(self.rows) == 0:
            self.rows, self.keys, self.counts = rows, keys, counts
            return
        low = min(int(self.keys.min()), int(keys.min()))
        base = max(int(self.keys.max()), int(keys.max())) - low + 1
        if (max(int(self.rows[-1]), int(rows[-1])) + 1) * base >= 1 << 62:
            self.rows, self.keys, self.counts = _totals(
                np.concatenate((self.rows, rows)),
                np.concatenate((self.keys, keys)),
                np.concatenate((self.counts, counts)),
            )
            return
        combined = self.rows * base + (self.keys - low)
        added = rows * base + (keys - low)
        pos = np.searchsorted(combined, added)
        found = pos < len(combined)
        found[found] = combined[pos[found]] == added[found]
        del combined
        self.counts[pos[found]] += counts[found]
        new = ~found
        if new.any():
            self.rows, self.keys, self.counts = insert_sorted(
                pos[new], (self.rows, rows[new]), (self.keys, keys[new]), (self.counts, counts[new])
            )

    def of_rows(self, rows: Int64Array) -> tuple[Int64Array, Int64Array, Int64Array]:
        """(row index into `rows`, key, count) of every run of the given rows, grouped in their order."""
        self.compact()
        lo = np.searchsorted(self.rows, rows, side="left")
        hi = np.searchsorted(self.rows, rows, side="right")
        n = hi - lo
        owner = np.repeat(np.arange(len(rows), dtype=np.int64), n)
        idx = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
        return owner, self.keys[idx], self.counts[idx]


class HistogramColumns:
    """The histograms of many rows: exact millisecond runs, plus approximate bucket runs and zeros for
    the rows that hold a duration finer than a millisecond (or came approximate from elsewhere)."""

    __slots__ = ("approx", "buckets", "exact", "zeros")

    def __init__(self) -> None:
        self.exact = RunStore()
        self.buckets = RunStore()
        self.approx: set[int] = set()
        """Rows that are approximate whatever their distinct values (a fine duration was added)."""
        self.zeros: dict[int, int] = {}
        """Zeros of rows restored approximate (durations added here are never 0 when fine)."""

    def add_ms(self, rows: Int64Array, ms: Int64Array, counts: Int64Array) -> None:
        """Whole-millisecond durations (non-negative) of rows, with counts."""
        self.exact.add(rows, ms, counts)

    def add_fine(self, rows: Int64Array, seconds: npt.NDArray[np.float64]) -> None:
        """Durations finer than a millisecond (positive): the rows turn approximate."""
        if len(rows):
            self.buckets.add(rows, bucket_index(seconds), np.ones(len(rows), dtype=np.int64))
            self.approx.update(np.unique(rows).tolist())

    def add_histogram(self, row: int, hist: LatencyHistogram) -> None:
        """A whole histogram (restoring state kept as objects)."""
        keys, counts = hist.key_counts()
        rows = np.full(len(keys), row, dtype=np.int64)
        if hist.exact:
            self.exact.add(rows, keys, counts)
            return
        self.buckets.add(rows, keys, counts)
        self.approx.add(row)
        if hist.zeros:
            self.zeros[row] = self.zeros.get(row, 0) + hist.zeros

    def encode(self, rows: Int64Array, max_exact: int) -> list[str]:
        """`LatencyHistogram.encode()` of each row's histogram, in the order of `rows`: ENCODE_ROWS at
        a time, so the runs and buffers of one piece are in memory at once, not those of a whole
        flush (~700,000 rows and 2 million runs at 10,000 customers, tens of MB; measured)."""
        out: list[str] = []
        for i in range(0, len(rows), ENCODE_ROWS):
            out += self._encode_piece(rows[i : i + ENCODE_ROWS], max_exact)
        return out

    def _encode_piece(self, rows: Int64Array, max_exact: int) -> list[str]:
        owner, keys, counts = self.exact.of_rows(rows)
        n = np.bincount(owner, minlength=len(rows)).astype(np.int64)
        bounds = np.concatenate(([0], np.cumsum(n)))
        approx = np.fromiter((r in self.approx for r in rows.tolist()), np.bool_, len(rows)) if self.approx else None
        out: list[str | None] = [None] * len(rows)
        if len(keys):
            deltas = np.empty(len(keys), dtype=np.int64)
            deltas[1:] = keys[1:] - keys[:-1]
            starts = bounds[:-1][n > 0]
            deltas[starts] = 0
            big = np.zeros(len(rows), dtype=np.int64)
            big[n > 0] = np.maximum.reduceat(np.maximum(deltas, counts), starts)
            width = np.select([big < 1 << 8, big < 1 << 16, big < 1 << 32], [1, 2, 4], 8)
            exact = (n > 0) & (n <= max_exact)
            if approx is not None:
                exact &= ~approx
            small = exact & (2 * n * width < COMPRESS_FROM)
            runs = _ExactRuns(bounds, keys, deltas, counts)
            for w in np.unique(width[exact]).tolist():
                rows_w = exact & (width == w)
                _encode_small(out, np.flatnonzero(rows_w & small), w, runs)
                _encode_large(out, np.flatnonzero(rows_w & ~small), w, runs)
        rest = [i for i, text in enumerate(out) if text is None]
        if rest:
            row_buckets = self.buckets.of_rows(rows[rest])
            bucket_bounds = np.searchsorted(row_buckets[0], np.arange(len(rest) + 1)).tolist()
            for j, i in enumerate(rest):
                h = LatencyHistogram(max_exact)
                a, b = int(bounds[i]), int(bounds[i + 1])
                if b > a:
                    h.add_ms_counts(keys[a:b], counts[a:b])
                c, d = bucket_bounds[j], bucket_bounds[j + 1]
                row = int(rows[i])
                if d > c or row in self.approx:
                    h.add_buckets(row_buckets[1][c:d], row_buckets[2][c:d], self.zeros.get(row, 0))
                out[i] = h.encode()
        return [text for text in out if text is not None]


@dataclass(slots=True)
class _ExactRuns:
    """The exact runs of a piece's rows: row `i`'s are `bounds[i]:bounds[i + 1]` of the key deltas
    (0 at each row's first key) and counts."""

    bounds: Int64Array
    keys: Int64Array
    deltas: Int64Array
    counts: Int64Array

    def payloads(self, which: Int64Array, width: int) -> tuple[npt.NDArray[np.uint8], Int64Array]:
        """The (key delta, count) pairs of rows `which` at `width` bytes each, concatenated, and each
        row's number of pairs."""
        lo, hi = self.bounds[which], self.bounds[which + 1]
        n = hi - lo
        idx = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
        pairs = np.empty((len(idx), 2), dtype=WIDTHS[width])
        pairs[:, 0] = self.deltas[idx]
        pairs[:, 1] = self.counts[idx]
        return pairs.view(np.uint8).ravel(), n


def _encode_small(out: list[str | None], which: Int64Array, width: int, runs: _ExactRuns) -> None:
    """Exact rows whose payload is too small to compress, of one width: one buffer for all."""
    if not len(which):
        return
    payload, n = runs.payloads(which, width)
    text = _base64_many(payload, 2 * width * n)
    texts = _rows_text(
        [f"{VERSION}e;".encode(), n, b";", runs.keys[runs.bounds[which]], f";0;{width};".encode()],
        text,
        (2 * width * n + 2) // 3 * 4,
    )
    for i, t in zip(which.tolist(), texts, strict=True):
        out[i] = t


def _encode_large(out: list[str | None], which: Int64Array, width: int, runs: _ExactRuns) -> None:
    """Exact rows of one width whose payload may compress (`_encode_arrays`' rule), their payloads
    built in one buffer; one whose text would pass MAX_ENCODED_CHARS is left to `LatencyHistogram`."""
    if not len(which):
        return
    payload, n = runs.payloads(which, width)
    data = payload.tobytes()
    ends = np.cumsum(2 * width * n).tolist()
    firsts = runs.keys[runs.bounds[which]].tolist()
    for i, a, b, count, first in zip(which.tolist(), [0, *ends[:-1]], ends, n.tolist(), firsts, strict=True):
        raw = data[a:b]
        packed = zlib.compress(raw, 6)
        if len(packed) * 4 < len(raw) * 3:
            text = f"{VERSION}e;{count};{first};0;{width}z;{base64.b64encode(packed).decode('ascii')}"
        else:
            text = f"{VERSION}e;{count};{first};0;{width};{base64.b64encode(raw).decode('ascii')}"
        if len(text) <= MAX_ENCODED_CHARS:
            out[i] = text


def _decimal(values: Int64Array) -> tuple[npt.NDArray[np.uint8], Int64Array]:
    """The ASCII decimal digits of non-negative integers, all concatenated, and how many each has."""
    n_digits = np.ones(len(values), dtype=np.int64)
    power = 10
    while (more := values >= power).any():
        n_digits += more
        power *= 10
    ends = np.cumsum(n_digits)
    digits = np.empty(int(ends[-1]), dtype=np.uint8)
    rest = values.copy()
    for k in range(int(n_digits.max())):  # the k-th digit from the right of each number that has one
        live = n_digits > k
        digits[ends[live] - 1 - k] = ord("0") + rest[live] % 10
        rest //= 10
    return digits, n_digits


def _rows_text(heads: list[bytes | Int64Array], tails: npt.NDArray[np.uint8], tail_sizes: Int64Array) -> list[str]:
    """One string per row: its `heads` in order — bytes written alike in every row, or an int64
    column written in decimal — then its own `tail_sizes` characters of `tails` (every row's, in row
    order). One buffer, one decode and one split for all rows instead of an f-string and a slice per
    row (~700,000 rows at 10,000 customers)."""
    rows = len(tail_sizes)
    parts: list[tuple[npt.NDArray[np.uint8], Int64Array]] = []
    for head in heads:
        if isinstance(head, bytes):
            parts.append((np.frombuffer(head * rows, np.uint8), np.full(rows, len(head), dtype=np.int64)))
        else:
            parts.append(_decimal(head))
    parts.append((tails, tail_sizes))
    row_size = np.ones(rows, dtype=np.int64)  # a newline after each row: the separator (never in a text)
    for _, sizes in parts:
        row_size += sizes
    at = np.cumsum(row_size) - row_size
    buf = np.full(int(row_size.sum()), ord("\n"), dtype=np.uint8)
    for data, sizes in parts:
        # each byte's place: its row's current position plus its index within that row's piece
        buf[np.repeat(at - (np.cumsum(sizes) - sizes), sizes) + np.arange(len(data))] = data
        at = at + sizes
    return buf.tobytes().decode("ascii").split("\n")[:-1]


def _base64_many(payload: npt.NDArray[np.uint8], sizes: Int64Array) -> npt.NDArray[np.uint8]:
    """Standard base64 of each of many concatenated payloads, in one call: the ASCII of all, each
    payload's `(size + 2) // 3 * 4` characters after the previous one's. Each payload is zero-padded
    to whole 3-byte groups, so its groups encode on their own; the characters that stand for padding
    bytes are then set to "=" as the standard has it."""
    groups = (sizes + 2) // 3
    padded = groups * 3
    buf = np.zeros(int(padded.sum()), dtype=np.uint8)
    buf[np.arange(len(payload)) - np.repeat(np.cumsum(sizes) - sizes - (np.cumsum(padded) - padded), sizes)] = payload
    text = np.frombuffer(binascii.b2a_base64(buf.tobytes(), newline=False), dtype=np.uint8).copy()
    ends = np.cumsum(groups * 4)
    short = sizes % 3
    text[ends[short > 0] - 1] = ord("=")
    text[ends[short == 1] - 2] = ord("=")
    return text
