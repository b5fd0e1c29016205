"""Rollup rows as arrays: parsing a read's results, keeping only the planned windows, combining reads.

A read returns one row per stored rollup point; `read_windows` turns the statements' results into
columns (numpy for numbers, lists for histogram texts and customers), drops the windows that lie
between two planned runs (`Plan.keep`: coalesced statements read them too) and keeps the rows a
reader counts where compacted points are (`counting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from logpulse.readmodel import counting
from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.plan import Plan, Who
from logpulse.storage.influx import AsyncInfluxQuery
from logpulse.storage.points import RollupLevel

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


async def read_windows(
    client: AsyncInfluxQuery,
    results: list[dict[str, Any]],
    level: RollupLevel,
    p: Plan,
    who: Who,
    fields: tuple[str, ...],
) -> Windows:
    """The counted rows of a windows read (`counting`) inside the plan's runs, as arrays."""
    rows = await counting.counted_read(client, results, level, who, fields, p)
    if not len(rows):
        return Windows.empty()

    def numbers(name: str, dtype: type) -> Any:
        return np.asarray([0 if v is None else v for v in rows.cols.get(name, [])] or [0] * len(rows), dtype=dtype)

    return Windows(
        rows.starts(level),
        numbers("count", np.int64),
        numbers("failed", np.int64),
        numbers("sum", np.float64),
        rows.cols.get("hist") or [None] * len(rows),
        rows.customers,
    )


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
