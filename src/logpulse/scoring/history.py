"""The cumulative rows of a customer's completed buckets, as a numpy buffer for runs of buckets.

A row is the running sums after one completed bucket — (requests, sum of ln d, of ln² d, failed, 5xx,
expected requests) — so a window's sums are the difference of two rows. The per-bucket path keeps the
same rows as a deque of tuples (reading one numpy row costs more than the test on it); the scorer
syncs the two lazily when it switches between them (`ScorerState.rows_to_deque` / `rows_to_numpy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

COLUMNS = 6
"""History columns: requests, sum ln d, sum ln² d, failed, 5xx, expected requests."""


class History:
    """The rows of the last `keep` buckets (HISTORY_S). `total` counts every row ever appended; row 0
    is the zero row."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.buf = np.zeros((2 * keep, COLUMNS))
        self.size = 1  # rows of buf in use
        self.total = 1
        self.last: tuple[float, ...] = (0.0,) * COLUMNS

    def extend(self, rows: np.ndarray, count: int | None = None) -> None:
        """Append the rows of `count` (default: len(rows)) buckets; `rows` may hold only the newest."""
        if len(rows) == 0:
            return
        self.total += len(rows) if count is None else count
        rows = rows[-self.keep :]  # older rows are out of every window: never read
        if self.size + len(rows) > len(self.buf):
            start = max(0, self.size - self.keep)
            self.buf[: self.size - start] = self.buf[start : self.size].copy()
            self.size -= start
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

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots hold the last `keep` rows only."""
        return {"keep": self.keep, "rows": self.tail().copy(), "total": self.total}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.keep, rows = state["keep"], state["rows"]
        self.buf = np.zeros((2 * self.keep, COLUMNS))
        self.buf[: len(rows)] = rows
        self.size, self.total = len(rows), state["total"]
        self.last = tuple(rows[-1].tolist())
