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
  identity (not covered: counted, and merged by the next compaction). `covers` only matters in a
  window holding sources beside its compacted points: readers ask for it there, and in the windows
  that can still be open (`readmodel/counting.py`).
* A covered identity rewritten with a *larger* count after compaction (lines later than the lateness
  bound that land in a file segment still being read) cannot be added exactly: its old lines are in
  the compacted histogram and cannot be subtracted. Readers ignore it (never counted twice); the
  compactor logs it. `COMPACTION_LATENESS_S` exists to make this not happen.
* A window still open (before its end + `COMPACTION_LATENESS_S`) is compacted too, but its compacted
  point covers only **sealed** sources: identities whose file segment was read to its end, so their
  values are final (`storage/seals.py`, `rollups/open_compaction.py`). The sources of segments still
  being read stay beside it, uncovered, so readers count them with whatever value they grow to; a
  window can hold a compacted point and such sources for as long as it is open. None of this changes
  what a reader does: the same rule counts every window, open or closed.
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


def window_keys(customers: Sequence[str], times: npt.NDArray[np.int64], window_ns: int) -> npt.NDArray[np.int64]:
    """Per row, a number naming its (customer, window): equal for the rows of one customer-window."""
    if not len(times):
        return np.zeros(0, np.int64)
    starts = times - times % window_ns
    if len(set(customers)) == 1:  # a one-customer read
        return starts // window_ns
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in customers), dtype=np.int64, count=len(times))
    window: npt.NDArray[np.int64] = (starts - starts.min()) // window_ns
    return codes * (int(window.max()) + 1) + window


def newest(
    keys: npt.NDArray[np.int64], times: npt.NDArray[np.int64], candidates: npt.NDArray[np.bool_]
) -> npt.NDArray[np.intp]:
    """Indices of each window's newest candidate row (the latest time among its candidates)."""
    rows = np.flatnonzero(candidates)
    if len(set(keys[rows].tolist())) == len(rows):  # one candidate per window, as once compacted: no sort
        return rows
    order = rows[np.lexsort((times[rows], keys[rows]))]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = keys[order][1:] != keys[order][:-1]
    return order[last]


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
    `complete`: per row, whether every field the reader needs is present (only read on compacted rows).
    Vectorised: the usual states — no compacted row, or windows whose only row is their compacted
    point — decode no `covers` at all.
    """
    n = len(times)
    marked = np.fromiter((c is not None for c in compacted), dtype=bool, count=n)
    if not marked.any():
        return np.ones(n, dtype=bool)
    key = window_keys(customers, times, window_ns)
    has_covers = np.fromiter((bool(c) for c in covers), dtype=bool, count=n)
    keep = ~marked
    standing = newest(key, times, marked & complete & has_covers)  # per window, its newest complete generation
    if len(standing) == 0:
        return keep
    keep[standing] = True
    shadowed = np.flatnonzero(~marked & np.isin(key, key[standing]))
    if len(shadowed):
        starts = times - times % window_ns
        of_window = dict(zip(key[standing].tolist(), standing.tolist(), strict=True))
        decoded: dict[int, dict[int, int]] = {}
        for i in shadowed.tolist():
            j = of_window[int(key[i])]
            if j not in decoded:
                decoded[j] = decode_covers(str(covers[j]))
            if int(times[i] - starts[i]) in decoded[j]:
                keep[i] = False
    return keep
