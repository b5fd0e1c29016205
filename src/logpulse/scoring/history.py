"""The cumulative rows of a customer's completed buckets, as a numpy buffer for runs of buckets.

A row is the running sums after one completed bucket — (requests, sum of ln d, of ln² d, failed, 5xx,
expected requests) — so a window's sums are the difference of two rows. The per-bucket path keeps the
same rows in deques, the counts as tuples and the expected requests as floats (reading one numpy row
costs more than the test on it; an empty bucket repeats the count tuple); the scorer
syncs the two lazily when it switches between them (`ScorerState.rows_to_deque` / `rows_to_numpy`).
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

COLUMNS = 6
"""History columns: requests, sum ln d, sum ln² d, failed, 5xx, expected requests."""
_ZERO_ROW = np.zeros((1, COLUMNS))
_ZERO_LAST = (0.0,) * COLUMNS
_NO_CHANGE = np.zeros(1, dtype=np.int64), np.zeros((1, 2))
"""What every new customer's history and steps start from: shared, read-only (the buffers are
replaced, never written, when rows are added to them), so that a customer whose buckets are all
completed one by one costs no numpy arrays of its own here (~0.5 KB)."""
for _shared in (_ZERO_ROW, *_NO_CHANGE):
    _shared.flags.writeable = False


class History:
    """The rows of the last `keep` buckets (HISTORY_S). `total` counts every row ever appended; row 0
    is the zero row.

    The buffer grows with the rows it is given, up to `2 * keep` (then the rows older than `keep` are
    dropped to make room): a customer whose buckets are all completed one by one never writes rows
    here between snapshots, and a new customer's first rows cost what they hold, not 2 * keep rows."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.buf = _ZERO_ROW
        self.size = 1  # rows of buf in use
        self.total = 1
        self.last: tuple[float, ...] = _ZERO_LAST

    def extend(self, rows: np.ndarray, count: int | None = None) -> None:
        """Append the rows of `count` (default: len(rows)) buckets; `rows` may hold only the newest."""
        if len(rows) == 0:
            return
        self.total += len(rows) if count is None else count
        rows = rows[-self.keep :]  # older rows are out of every window: never read
        need = self.size + len(rows)
        if need > 2 * self.keep:  # full: drop the rows older than `keep`
            start = max(0, self.size - self.keep)
            self.buf[: self.size - start] = self.buf[start : self.size].copy()
            self.size -= start
            need -= start
        if need > len(self.buf):
            grown = np.zeros((min(2 * self.keep, max(need, 2 * len(self.buf))), COLUMNS))
            grown[: self.size] = self.buf[: self.size]
            self.buf = grown
        self.buf[self.size : self.size + len(rows)] = rows
        self.size += len(rows)
        self.last = tuple(rows[-1].tolist())

    def tail(self, count: int | None = None) -> np.ndarray:
        """The last min(total, keep, count) rows (the last is `last`)."""
        count = self.keep if count is None else min(count, self.keep)
        return self.buf[max(0, self.size - count) : self.size]

    def row(self, number: int) -> tuple[float, ...]:
        """Row `number` (counting every row ever appended); it must be one of the kept rows."""
        return tuple(self.buf[number - self.total + self.size].tolist())

    def resized(self, keep: int) -> History:
        """The same rows in a history of `keep` rows; when it grows, the oldest kept row stands in for the
        older ones it never held (the caller makes sure no window reads them)."""
        rows = self.tail()
        if keep > len(rows) and self.total > len(rows):
            rows = np.concatenate([np.repeat(rows[:1], min(keep, self.total) - len(rows), axis=0), rows])
        rows = rows[-keep:]
        new = History(keep)
        new.buf = rows.copy()
        new.size, new.total, new.last = len(rows), self.total, self.last
        return new

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots hold the last `keep` rows only."""
        return {"keep": self.keep, "rows": self.tail().copy(), "total": self.total}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.keep, rows = state["keep"], state["rows"]
        self.buf = np.array(rows, dtype=np.float64).reshape(len(rows), COLUMNS)
        self.size, self.total = len(rows), state["total"]
        self.last = tuple(rows[-1].tolist())


class CountSteps:
    """Cumulative (requests, 5xx) after each completed bucket, kept only at the rows where they changed.

    The SLO rules' long windows reach 6 h back but read only these two sums; they change only at
    buckets that received requests, so a customer sending a few requests an hour keeps a few rows
    here instead of 720 (the full rows of `History` are kept only as far back as the other windows
    read). A row's sums are those of the last change at or before it."""

    def __init__(self, span: int) -> None:
        self.span = span  # how far back (rows) a window may read
        self.rows, self.sums = _NO_CHANGE  # row numbers of the changes, increasing (row 0: zeros), their sums
        self.size = 1
        self.recent = array("d")  # (row, requests, 5xx) added one by one, not in the arrays yet

    def add(self, rows: np.ndarray, sums: np.ndarray) -> None:
        """Append changes at `rows` (increasing, after every row held) with their cumulative sums."""
        if self.recent:
            self._flush()
        self._append(rows, sums)

    def _flush(self) -> None:
        recent, self.recent = np.frombuffer(self.recent, dtype=np.float64).reshape(-1, 3), array("d")
        self._append(recent[:, 0].astype(np.int64), recent[:, 1:])

    def _append(self, rows: np.ndarray, sums: np.ndarray) -> None:
        if not len(rows):
            return
        need = self.size + len(rows)
        if need > len(self.rows):  # full: first drop the changes no window reaches any more
            oldest = int(rows[-1]) - self.span
            drop = int(np.searchsorted(self.rows[: self.size], oldest, side="right")) - 1
            if drop > 0:
                self.rows[: self.size - drop] = self.rows[drop : self.size].copy()
                self.sums[: self.size - drop] = self.sums[drop : self.size].copy()
                self.size -= drop
                need -= drop
            if need > len(self.rows):
                grown = max(need, 2 * len(self.rows))
                self.rows = np.resize(self.rows, grown)
                self.sums = np.resize(self.sums, (grown, 2))
        self.rows[self.size : need] = rows
        self.sums[self.size : need] = sums
        self.size = need

    def add_one(self, row: int, requests: float, errors: float) -> None:
        """One change (the per-bucket path): kept in a C array of doubles until read, which costs a
        busy customer less than writing numpy elements at every bucket (24 B a change: a list of
        tuples of Python numbers took ~140 B)."""
        self.recent.extend((row, requests, errors))
        if len(self.recent) >= 96:  # 32 changes
            self._flush()

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The cumulative (requests, 5xx) at each of `rows` (none older than `span` before the newest)."""
        if self.recent:
            self._flush()
        i = np.searchsorted(self.rows[: self.size], rows, side="right") - 1
        at: np.ndarray = self.sums[np.maximum(i, 0)]
        return at

    def at_one(self, row: int) -> tuple[float, float]:
        """`at` for one row (the per-bucket path's SLO windows): no arrays built around the scalar."""
        if self.recent:
            self._flush()
        i = int(np.searchsorted(self.rows[: self.size], row, side="right")) - 1
        requests, errors = self.sums[max(i, 0)].tolist()
        return requests, errors

    @classmethod
    def of(cls, history: History, span: int) -> CountSteps:
        """Built from the full rows a history holds (snapshots written before this was kept)."""
        steps = cls(span)
        tail = history.tail()
        first = history.total - len(tail)
        changed = np.flatnonzero(np.diff(tail[:, 0], prepend=-1.0))
        steps.add(changed + first, tail[changed][:, [0, 4]])  # rows before `first`: out of every window
        return steps

    def __getstate__(self) -> dict[str, Any]:
        if self.recent:
            self._flush()
        return {"span": self.span, "rows": self.rows[: self.size].copy(), "sums": self.sums[: self.size].copy()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.span, self.rows, self.sums = state["span"], state["rows"], state["sums"]
        self.size, self.recent = len(self.rows), array("d")
