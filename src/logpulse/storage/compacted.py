"""Compacted rollup points: how they are told apart from the points they replace, and which stored
rows a reader counts.

A rollup window holds one point per identity (file × level × segment × offset, `rollups/identity.py`).
Compaction (`rollups/compaction.py`) merges them into one **compacted point** per customer-window and
level and then deletes the points it merged. InfluxDB 1.x has no transactions, so readers must be
exact before, during and after those deletes, and after a crash anywhere in between:

* A compacted point lives in its own series: the tag `compacted` (`TAG`) next to `customer_id`, so no
  source identity can ever share its time. Readers select the tag as a column (`"compacted"`), which is
  null on a source row. Its time is window start + **generation** (0, 1, 2, … below 1 ms), and a
  newer generation is a new point, never an overwrite: InfluxDB stores each field of a point on its
  own, so a reader racing an overwrite could see the new `count` beside the old coverage.
* Its field `covers` lists the sources it holds: each source's identity offset in the window and its
  `count` at compaction time (`encode_covers`). A newer generation holds the previous one's sources
  and its new ones, so the newest generation alone says everything.
* A reader of a customer-window (`counted_rows`) takes the newest **complete** compacted row (every
  field it reads present: a point being written can show some fields before others; an incomplete one
  is skipped, and the older generation still stands) and drops every older compacted row and every
  source row whose offset it covers. So a window counts each source exactly once while the compacted
  point is written, while its sources are deleted, when a crash left both, when the same file is
  ingested again (its points rewrite covered identities: ignored), and when late lines add a new
  identity (not covered: counted, and merged by the next compaction).
* A covered identity rewritten with a *larger* count after compaction (lines later than the lateness
  bound that land in a file segment still being read) cannot be added exactly: its old lines are in
  the compacted histogram and cannot be subtracted. Readers ignore it (never counted twice); the
  compactor logs it. `COMPACTION_LATENESS_S` exists to make this not happen.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from logpulse.model import RollupPoint
from logpulse.storage.points import TAG_CUSTOMER, rollup_line

TAG = "compacted"
TAG_VALUE = "1"
FIELD = "covers"
VERSION = "1"
MAX_GENERATIONS = 1_000_000
"""Generations live in the window's first millisecond (time = window start + generation)."""

_PAIR = np.dtype([("offset", "<u8"), ("count", "<u4")])


def encode_covers(offsets: Sequence[int], counts: Sequence[int]) -> str:
    """`1;` + base64 of (offset uint64, count uint32) pairs, sorted by offset."""
    pairs = np.zeros(len(offsets), dtype=_PAIR)
    pairs["offset"] = offsets
    pairs["count"] = np.minimum(np.asarray(counts, dtype=np.int64), 2**32 - 1)
    pairs.sort(order="offset")
    return f"{VERSION};" + base64.b64encode(pairs.tobytes()).decode("ascii")


def compacted_line(p: RollupPoint, covers: str) -> str:
    """Line protocol of a compacted point: the rollup point's line in the compacted series, with `covers`."""
    head = f"{p.measurement},{TAG_CUSTOMER}={p.customer_id}"
    fields, _, stamp = rollup_line(p)[len(head) + 1 :].rpartition(" ")
    return f'{head},{TAG}={TAG_VALUE} {fields},{FIELD}="{covers}" {stamp}'


def decode_covers(text: str) -> dict[int, int]:
    """{source offset: its count when compacted}; ValueError for a foreign encoding."""
    version, _, payload = text.partition(";")
    if version != VERSION:
        raise ValueError(f"covers: {text[:20]!r}")
    pairs = np.frombuffer(base64.b64decode(payload), dtype=_PAIR)
    return dict(zip(pairs["offset"].tolist(), pairs["count"].tolist(), strict=True))


def counted_rows(
    customers: Sequence[str],
    times: npt.NDArray[np.int64],
    window_ns: int,
    compacted: Sequence[object],
    covers: Sequence[str | None],
    complete: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Mask of the rows a reader counts (see the module docstring).

    `compacted`: the `compacted` tag column (None on source rows); `covers` the field column;
    `complete`: per row, whether every field the reader needs is present. Fast path: no compacted row
    at all, or only windows whose single row is their compacted point — the usual state — cost one
    pass over the tag column and no decoding.
    """
    n = len(times)
    keep = np.ones(n, dtype=bool)
    marked = [i for i, c in enumerate(compacted) if c is not None]
    if not marked:
        return keep
    starts = (times - times % window_ns).tolist()
    newest: dict[tuple[str, int], int] = {}
    for i in marked:
        keep[i] = False
        if not complete[i] or not covers[i]:
            continue
        key = (customers[i], starts[i])
        j = newest.get(key)
        if j is None or times[i] > times[j]:
            newest[key] = i
    for i in newest.values():
        keep[i] = True
    rows_per_window: dict[tuple[str, int], list[int]] = {}
    for i in range(n):
        if compacted[i] is None:
            key = (customers[i], starts[i])
            if key in newest:
                rows_per_window.setdefault(key, []).append(i)
    for key, rows in rows_per_window.items():
        covered = decode_covers(str(covers[newest[key]]))
        for i in rows:
            if int(times[i]) - key[1] in covered:
                keep[i] = False
    return keep
