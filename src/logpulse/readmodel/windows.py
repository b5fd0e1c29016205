"""Rollup rows as arrays: parsing a read's results, keeping only the planned windows, combining reads.

A read returns one row per stored rollup point; `read_rows` turns the statements' results into
columns (numpy for numbers, lists for histogram texts and customers) and drops the windows that lie
between two planned runs (`Plan.keep`: coalesced statements read them too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.plan import Plan
from logpulse.storage import compacted
from logpulse.storage.points import TAG_CUSTOMER, RollupLevel

FloatArray = npt.NDArray[np.float64]


@dataclass
class Windows:
    """Rollup rows of one read, one entry per stored point, in no particular order."""

    start: IntArray  # window start, UTC ns
    count: IntArray
    failed: IntArray
    seconds: FloatArray  # sum of durations
    hist: list[str | None]
    customer: list[str]  # "" when the read was for one customer

    @classmethod
    def empty(cls) -> Windows:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), [], [])


def read_rows(results: list[dict[str, Any]], level: RollupLevel, p: Plan, fields: tuple[str, ...]) -> Windows:
    """Parse the statements' results into arrays; windows outside the plan's runs are dropped."""
    times: list[int] = []
    columns = (*fields, compacted.TAG, compacted.FIELD)
    cols: dict[str, list[Any]] = {f: [] for f in columns}
    customers: list[str] = []
    for result in results:
        for s in result.get("series", []) or []:
            values = s.get("values") or []
            if not values:
                continue
            index = {c: i for i, c in enumerate(s["columns"])}
            transposed = list(zip(*values, strict=True))
            times.extend(transposed[index["time"]])
            for f in columns:
                cols[f].extend(transposed[index[f]] if f in index else [None] * len(values))
            customers.extend([(s.get("tags") or {}).get(TAG_CUSTOMER, "")] * len(values))
    if not times:
        return Windows.empty()
    t = np.asarray(times, dtype=np.int64)
    start = t - t % level.window_ns
    keep = p.keep(level, start) & counted(cols, customers, t, level, fields)

    def numbers(name: str, dtype: type) -> Any:
        return np.asarray([0 if v is None else v for v in cols.get(name, [])] or [0] * len(t), dtype=dtype)[keep]

    idx = np.flatnonzero(keep).tolist()
    hist = cols.get("hist")
    return Windows(
        start[keep],
        numbers("count", np.int64),
        numbers("failed", np.int64),
        numbers("sum", np.float64),
        [hist[i] for i in idx] if hist is not None else [None] * len(idx),
        [customers[i] for i in idx],
    )


def counted(
    cols: dict[str, list[Any]], customers: list[str], times: IntArray, level: RollupLevel, fields: tuple[str, ...]
) -> npt.NDArray[np.bool_]:
    """The rows a reader counts: each window from its newest complete compacted point and the sources
    that point does not cover (`storage/compacted.py`); a compacted row is complete when every field
    read is there (a point being written may show some fields before others)."""
    marks = cols[compacted.TAG]
    if not any(m is not None for m in marks):
        return np.ones(len(times), dtype=bool)
    complete = np.ones(len(times), dtype=bool)
    for i in (i for i, m in enumerate(marks) if m is not None):
        complete[i] = all(cols[f][i] is not None for f in fields)
    return compacted.counted_rows(customers, times, level.window_ns, marks, cols[compacted.FIELD], complete)


def in_pairs(w: Windows, level: RollupLevel, pairs: set[tuple[str, int]]) -> npt.NDArray[np.bool_]:
    """Rows whose (customer, window of `level`) is one of `pairs`."""
    coarse = (w.start - w.start % level.window_ns).tolist()
    return np.asarray([(c, s) in pairs for c, s in zip(w.customer, coarse, strict=True)], dtype=bool)


def concat(parts: list[Windows]) -> Windows:
    parts = [w for w in parts if len(w.start)]
    if not parts:
        return Windows.empty()
    if len(parts) == 1:
        return parts[0]
    return Windows(
        np.concatenate([w.start for w in parts]),
        np.concatenate([w.count for w in parts]),
        np.concatenate([w.failed for w in parts]),
        np.concatenate([w.seconds for w in parts]),
        [h for w in parts for h in w.hist],
        [c for w in parts for c in w.customer],
    )


def take(w: Windows, mask: npt.NDArray[np.bool_]) -> Windows:
    idx = np.flatnonzero(mask).tolist()
    return Windows(
        w.start[mask],
        w.count[mask],
        w.failed[mask],
        w.seconds[mask],
        [w.hist[i] for i in idx],
        [w.customer[i] for i in idx],
    )
