"""Rollups: per customer and window (15 min, 1 h, 1 d of UTC event time) count, failed, server errors, sum and a
mergeable latency histogram, written as points whose identity makes every rewrite idempotent.

Identity design (the question of issue 14, item 3)
--------------------------------------------------
InfluxDB keys a point by (measurement, tags, time), so a rollup point's *time* is its identity:
window start + an offset in [0, window) derived from **(file_key, level, segment, first_offset)**.

* A log file is cut into byte **segments** (`ROLLUP_SEGMENT_BYTES` × `RollupLevel.segment_factor`:
  32 MB for 15 min, 128 MB for 1 h, 1 GB for 1 d by default); a line belongs to the segment holding
  its first byte (chunks are split there before parsing, `split_at_segments`). For each file the
  step keeps, per level, the aggregates of the segment being read, keyed by (customer, window), and
  writes each one as the **cumulative** aggregate of all lines of that file-segment in that
  customer-window — never a delta. So:
* **replay after kill -9** (Bytewax at-least-once): the state is restored from the snapshot taken
  together with the source offsets, the same lines are read again and the same cumulative values are
  rewritten under the same times; what a segment contains depends only on byte offsets, never on how
  the file was cut into chunks, on timing or on a clock (chunk boundaries after a resume differ and
  do not matter).
* **catching up**: the killed run may have written points with values from *past* its last snapshot
  (it flushed, then was killed before the next snapshot). The replay's cumulative values of those
  points are smaller until it gets as far again; written, they would take lines out of InfluxDB —
  for good if the restarted run is stopped (SIGTERM) first. So a run holds back the points of the
  segments it is still reading until reading has passed the end of the file's complete lines when
  this execution first saw it (which bounds where any earlier run can have got; `RollupLogic`); what
  is held back stays dirty in the snapshot. A second `ingest` of a file likewise leaves the first's
  values alone until it has read the whole file (interrupted, it writes what it has at its end).
* **the same file ingested twice** (or a renamed copy): the same `file_key` (fingerprint of the first
  line, the raw points' identity too) gives the same segments and the same cumulative values: rewrites.
  Two readers of the same content in one run share one state (keyed by file_key): a chunk that ends at
  or before what was already aggregated is skipped.
* **two files / two workers** writing one customer-window: different file keys give different offsets
  (a 64-bit hash reduced mod the window; a collision needs two files' hashes within 1 ns of 900 s).
* **late and out-of-order lines** (classic mode shuffles 30 days): a line adds to *its* window in the
  state of the segment it was read in. A years-old line adds one small point; it never reopens or keeps
  open anything, because state closes with its segment.
* **the fleet-wide point** (customer_id `*`, `points.FLEET_CUSTOMER`) of an identity and window is the
  cumulative aggregate of *all* lines of that file-segment in that window, kept in the same segment
  state and written under the same time as the customers' points: every rule above holds for it too,
  and summing the `*` points of a window gives every customer's lines together, exactly. It is added
  per part from the customer-window groups and (millisecond, count) runs already computed, not by
  bucketing the lines again (`_add_fleet`). Its packed per-customer table (`storage/fleet_table.py`)
  is built when the point is written, from the same state (`_fleet_tables`), so it is cumulative too.
* `first_offset` is the segment start when reading went through it from the start, else the offset
  reading began at (START_AT=end, a resume without recovery): a partial segment then never overwrites
  the full one written earlier with a smaller value.

Why not `bytewax.operators.windowing` (EventClock + TumblingWindower)? Its windows close on a
watermark that advances with *system* time, so whether a line is "late" (and which point it lands in)
depends on timing, and a replay could put the same line into a different point than the first run:
counted twice. It also emits only when a window closes, so live tailing would show today's numbers
only after each window is over. The keyed state here is Bytewax's own (`op.stateful_batch`, snapshots
consistent with the source), with closing decided by byte offsets.

State is bounded: per file and level one segment's aggregates (at most one per customer-window of the
lines in it, usually a few windows per customer). A file whose reading pauses keeps its state (one
segment) until `ROLLUP_IDLE_CLOSE_S` without data; then it is dropped (its points are written). If
the same file grows again, the new lines get a new identity (first_offset) — correct, but if the
processor is killed within one snapshot interval of that drop, a replay can put them in the old
identity too (counted twice): the one residual race, at most one snapshot interval after an hour idle.

Points are flushed (emitted to the sink) at most every `ROLLUP_FLUSH_S` per file, when a segment
closes, and at end of input, so a window that grows is rewritten about once a second, not per chunk.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from bytewax.operators import StatefulBatchLogic

from logpulse.model import Chunk, ParsedChunk, RequestBatch, RollupBatch, RollupPoint
from logpulse.storage import fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS, RollupLevel
from logpulse.tailing.fingerprint import identify_fd
from logpulse.tailing.reader import line_start_before

log = logging.getLogger(__name__)


def split_at_segments(chunk: Chunk, unit: int) -> list[Chunk]:
    """Cut a chunk at the first line start at or after each multiple of `unit` (segment boundary).

    A line belongs to the segment of its first byte, whatever chunks the source happened to read.
    """
    start = chunk.offset
    end = start + len(chunk.data)
    if end == start or start // unit == (end - 1) // unit:
        return [chunk]
    pieces: list[Chunk] = []
    data = chunk.data
    pos = 0
    for boundary in range((start // unit + 1) * unit, end, unit):
        rel = boundary - start
        if rel <= pos:
            continue
        nl = data.find(b"\n", rel - 1)
        cut = len(data) if nl < 0 else nl + 1
        if cut >= len(data):
            break
        pieces.append(Chunk(chunk.path, chunk.file_key, start + pos, data[pos:cut]))
        pos = cut
    pieces.append(Chunk(chunk.path, chunk.file_key, start + pos, data[pos:]))
    return pieces


@dataclass(slots=True)
class RollupPart:
    """The accepted lines of one chunk (one segment of one file), as columns for aggregation."""

    file_key: int
    start: int
    end: int
    customers: list[str]
    codes: npt.NDArray[np.int64]  # index into customers, per line
    times: npt.NDArray[np.int64]
    failed: npt.NDArray[np.bool_]
    server_errors: npt.NDArray[np.bool_]
    durations: npt.NDArray[np.float64]
    path: str = ""  # the file read (its size bounds what an earlier run may have written: `RollupLogic`)


def _failed(batches: list[RequestBatch], n: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(status >= 400, status >= 500) per line: statuses are 3 digits, so the first byte of each decides
    (one join and numpy comparisons instead of a Python call per line; measured 9x faster)."""
    joined = "".join(itertools.chain.from_iterable(b.statuses for b in batches)).encode("ascii", "replace")
    if len(joined) == 3 * n:
        first = np.frombuffer(joined, dtype=np.uint8)[0::3]
        return first >= ord("4"), first >= ord("5")
    statuses = list(itertools.chain.from_iterable(b.statuses for b in batches))
    return (
        np.fromiter(map("400".__le__, statuses), np.bool_, n),
        np.fromiter(map("500".__le__, statuses), np.bool_, n),
    )


def rollup_part(parsed: ParsedChunk) -> tuple[str, RollupPart] | None:
    """Columns of a parsed chunk keyed by its file (the rollup state's key), or None if it has no lines."""
    batches = list(parsed.batches.values())
    n = sum(len(b) for b in batches)
    if n == 0:
        return None
    file_key, start, end = parsed.span
    lens = np.fromiter((len(b) for b in batches), np.int64, len(batches))
    failed, server_errors = _failed(batches, n)
    part = RollupPart(
        file_key,
        start,
        end,
        [b.customer_id for b in batches],
        np.repeat(np.arange(len(batches), dtype=np.int64), lens),
        np.fromiter(itertools.chain.from_iterable(b.times for b in batches), np.int64, n),
        failed,
        server_errors,
        np.fromiter(map(float, itertools.chain.from_iterable(b.durations for b in batches)), np.float64, n),
        parsed.path,
    )
    return str(file_key), part


@dataclass(slots=True)
class _Agg:
    count: int
    failed: int
    sum_ns: int
    hist: LatencyHistogram
    server_errors: int | None  # None: restored from a snapshot older than the field (see `_upgrade`)

    def add(
        self,
        count: int,
        failed: int,
        server_errors: int,
        sum_ns: int,
        ms: npt.NDArray[np.int64],
        ms_counts: npt.NDArray[np.int64],
    ) -> None:
        """Add a group of lines: its numbers and the (millisecond, count) runs of its exact durations."""
        self.count += count
        self.failed += failed
        if self.server_errors is not None:  # unknown stays unknown: never a partial 5xx count
            self.server_errors += server_errors
        self.sum_ns += sum_ns
        if len(ms):
            self.hist.add_ms_counts(ms, ms_counts)


@dataclass(slots=True)
class _Segment:
    """One level's aggregates of one file segment, under one identity."""

    index: int
    ident_ns: int
    aggs: dict[tuple[str, int], _Agg] = field(default_factory=dict)
    customers: dict[int, list[str]] = field(default_factory=dict)
    """window → the customers with an aggregate in it (the `*` table of a window reads only these)."""
    dirty: set[tuple[str, int]] = field(default_factory=set)


@dataclass(slots=True)
class FileRollups:
    """The rollup state of one file (its key is the file's fingerprint): what a snapshot holds."""

    file_key: int
    next_offset: int = -1
    segments: list[_Segment | None] = field(default_factory=lambda: [None] * len(ROLLUP_LEVELS))
    last_data: float = 0.0  # wall time of the last chunk in this execution (idle close)
    flush_at: float | None = None
    path: str = ""  # where the file was last read (a snapshot from before this field restores "")


def _upgrade(state: FileRollups) -> FileRollups:
    """A snapshot taken before `server_errors` existed restores aggregates without it: their 5xx count
    is unknown, so they keep None (their points are written without the field) rather than count only
    the lines read after the restart. One taken before the fleet-wide aggregates gets them rebuilt."""
    if not hasattr(state, "path"):
        state.path = ""
    for seg in state.segments:
        for agg in seg.aggs.values() if seg is not None else ():
            if not hasattr(agg, "server_errors"):
                agg.server_errors = None
    for i, seg in enumerate(state.segments):
        if seg is not None and not hasattr(seg, "customers"):
            seg.customers = {}
            for c, w in seg.aggs:
                if c != FLEET_CUSTOMER:
                    seg.customers.setdefault(w, []).append(c)
        if seg is not None and seg.aggs and not any(c == FLEET_CUSTOMER for c, _ in seg.aggs):
            _rebuild_fleet(seg, ROLLUP_LEVELS[i])
    return state


def _rebuild_fleet(seg: _Segment, level: RollupLevel) -> None:
    """A snapshot taken before the fleet-wide aggregates existed: build them from the customers' (which
    hold every line of the segment so far), so the `*` points of this identity are complete, and mark
    them for the next flush."""
    for (_, window), agg in list(seg.aggs.items()):
        k = (FLEET_CUSTOMER, window)
        fleet = seg.aggs.get(k)
        if fleet is None:
            fleet = seg.aggs[k] = _Agg(0, 0, 0, LatencyHistogram(level.max_exact), 0)
            seg.dirty.add(k)
        fleet.count += agg.count
        fleet.failed += agg.failed
        fleet.sum_ns += agg.sum_ns
        fleet.server_errors = (
            None
            if fleet.server_errors is None or agg.server_errors is None
            else fleet.server_errors + agg.server_errors
        )
        fleet.hist.merge(agg.hist)


def identity_offset(file_key: int, level: RollupLevel, segment: int, first_offset: int) -> int:
    """The deterministic offset in [0, window) of an identity's points."""
    digest = hashlib.blake2b(f"{file_key}:{level.measurement}:{segment}:{first_offset}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % level.window_ns


@dataclass(slots=True)
class _LineValues:
    """Per-line values shared by all levels of one part."""

    ms: npt.NDArray[np.int64]  # duration in whole milliseconds (rounded)
    exact: npt.NDArray[np.bool_]  # the duration is a whole number of milliseconds
    all_exact: bool
    ms_max: int

    @classmethod
    def of(cls, part: RollupPart) -> _LineValues:
        scaled = part.durations * 1000.0
        ms = np.rint(scaled)
        exact = np.abs(scaled - ms) <= 1e-6 + 1e-12 * ms
        return cls(ms.astype(np.int64), exact, bool(exact.all()), int(ms.max()))


_EXACT_SUM_LIMIT = 2**53  # float64 holds every integer up to here: bincount's weights stay exact


def _groups(
    key: npt.NDArray[np.int64], size: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(sorted distinct keys, index of each line's key among them, lines per key); a counting pass
    instead of a sort when the key range is small (the usual case: customers x a few windows)."""
    if size <= 4 * len(key) + 65536:
        present = np.bincount(key, minlength=size)
        groups = np.flatnonzero(present)
        lookup = np.zeros(size, dtype=np.int64)
        lookup[groups] = np.arange(len(groups))
        return groups.astype(np.int64), lookup[key], present[groups].astype(np.int64)
    groups, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return groups.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)


def _pair_totals(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], weights: npt.NDArray[np.int64] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The sorted distinct (a, b) pairs of non-negative integers and each one's summed `weights`
    (default: how often it occurs): one `np.unique` of a combined key while it fits in 62 bits, else
    a sort of the pairs (durations of years). Shared by the customers' and the fleet's histograms."""
    if len(a) == 0:
        return a, b, np.zeros(0, dtype=np.int64)
    base = int(b.max()) + 1
    if (int(a.max()) + 1) * base < 2**62:
        if weights is None:
            keys, totals = np.unique(a * base + b, return_counts=True)
        else:
            keys, inverse = np.unique(a * base + b, return_inverse=True)
            totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(keys))
        return keys // base, keys % base, totals.astype(np.int64)
    srt = np.lexsort((b, a))
    a_s, b_s = a[srt], b[srt]
    new = np.ones(len(a_s), dtype=np.bool_)
    new[1:] = (a_s[1:] != a_s[:-1]) | (b_s[1:] != b_s[:-1])
    starts = np.flatnonzero(new)
    totals = np.diff(np.append(starts, len(a_s))) if weights is None else np.add.reduceat(weights[srt], starts)
    return a_s[starts], b_s[starts], totals.astype(np.int64)


def _aggregate(seg: _Segment, level: RollupLevel, part: RollupPart, v: _LineValues) -> None:
    """Add a part's lines to a level's segment state (vectorised: a few numpy calls per part plus
    one small update per customer-window touched)."""
    windows = part.times // level.window_ns
    wmin = int(windows.min())
    span = int(windows.max()) - wmin + 1
    groups, inverse, counts = _groups(part.codes * span + (windows - wmin), len(part.customers) * span)
    n_groups = len(groups)
    failed = np.bincount(inverse, weights=part.failed, minlength=n_groups).astype(np.int64)
    server = np.bincount(inverse, weights=part.server_errors, minlength=n_groups).astype(np.int64)
    if v.all_exact and v.ms_max * len(v.ms) < _EXACT_SUM_LIMIT:
        sums = np.bincount(inverse, weights=v.ms, minlength=n_groups).astype(np.int64) * 1_000_000
    else:  # exact integer nanoseconds, whatever the magnitudes
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(n_groups))
        sums = np.add.reduceat(np.rint(part.durations[order] * 1e9).astype(np.int64), starts)
    # (group, ms) runs of the exact lines: one sort of a combined key, then per group a slice
    ex_groups, ex_ms = (inverse, v.ms) if v.all_exact else (inverse[v.exact], v.ms[v.exact])
    run_group, run_ms, run_counts = _pair_totals(ex_groups, ex_ms)
    group_runs = np.searchsorted(run_group, np.arange(n_groups + 1)).tolist()
    names = part.customers
    counts_l, failed_l, server_l, sums_l = counts.tolist(), failed.tolist(), server.tolist(), sums.tolist()
    for g, key in enumerate(groups.tolist()):
        k = (names[key // span], key % span + wmin)
        agg = seg.aggs.get(k)
        if agg is None:
            agg = seg.aggs[k] = _Agg(0, 0, 0, LatencyHistogram(level.max_exact), 0)
            seg.customers.setdefault(k[1], []).append(k[0])
        a, b = group_runs[g], group_runs[g + 1]
        agg.add(counts_l[g], failed_l[g], server_l[g], sums_l[g], run_ms[a:b], run_counts[a:b])
        if not v.all_exact:
            fine = part.durations[(inverse == g) & ~v.exact]
            if len(fine):
                agg.hist.add(fine)
        seg.dirty.add(k)
    _add_fleet(
        seg,
        level,
        part,
        v,
        _GroupSums(groups % span, counts, failed, server, sums, inverse),
        wmin,
        run_group,
        run_ms,
        run_counts,
    )


@dataclass(slots=True)
class _GroupSums:
    """What `_aggregate` computed per customer-window group of a part, for the fleet-wide aggregate."""

    window: npt.NDArray[np.int64]  # per group: window index relative to the part's first window
    count: npt.NDArray[np.int64]
    failed: npt.NDArray[np.int64]
    server_errors: npt.NDArray[np.int64]
    sum_ns: npt.NDArray[np.int64]
    inverse: npt.NDArray[np.int64]  # per line: its group


def _add_fleet(
    seg: _Segment,
    level: RollupLevel,
    part: RollupPart,
    v: _LineValues,
    gs: _GroupSums,
    wmin: int,
    run_group: npt.NDArray[np.int64],
    run_ms: npt.NDArray[np.int64],
    run_counts: npt.NDArray[np.int64],
) -> None:
    """Add the part to the fleet-wide aggregates (customer `*`) of the segment: per window, the sums of
    its customer-window groups and the merge of their (millisecond, count) runs, all computed already
    by `_aggregate` — a few numpy calls over groups and runs, no second pass over the lines. The `*`
    aggregate lives in the same segment state under the same identity, so it is cumulative, survives
    replays and double ingest exactly as the customers' points do."""
    n_win = int(gs.window.max()) + 1
    count = np.bincount(gs.window, weights=gs.count, minlength=n_win).astype(np.int64).tolist()
    failed = np.bincount(gs.window, weights=gs.failed, minlength=n_win).astype(np.int64).tolist()
    server = np.bincount(gs.window, weights=gs.server_errors, minlength=n_win).astype(np.int64).tolist()
    sum_ns = np.zeros(n_win, dtype=np.int64)
    np.add.at(sum_ns, gs.window, gs.sum_ns)  # integer adds: exact whatever the magnitudes
    run_window = gs.window[run_group]
    key_window, key_ms, key_counts = _pair_totals(run_window, run_ms, run_counts)
    bounds = np.searchsorted(key_window, np.arange(n_win + 1)).tolist()
    sums_l = sum_ns.tolist()
    line_window = None if v.all_exact else gs.window[gs.inverse]
    for w in range(n_win):
        if count[w] == 0:
            continue
        k = (FLEET_CUSTOMER, wmin + w)
        agg = seg.aggs.get(k)
        if agg is None:
            agg = seg.aggs[k] = _Agg(0, 0, 0, LatencyHistogram(level.max_exact), 0)
        a, b = bounds[w], bounds[w + 1]
        agg.add(count[w], failed[w], server[w], sums_l[w], key_ms[a:b], key_counts[a:b])
        if line_window is not None:
            fine = part.durations[(line_window == w) & ~v.exact]
            if len(fine):
                agg.hist.add(fine)
        seg.dirty.add(k)


def _fleet_tables(seg: _Segment, windows: set[int]) -> dict[int, tuple[str, ...]]:
    """The packed per-customer tables of the `*` points of `windows`: every customer aggregate of the
    segment in that window, as it stands (cumulative, like the point). Built when points are written
    (about once a second), from the state, not per line."""
    out = {}
    for w in windows:
        aggs = [(c, seg.aggs[(c, w)]) for c in seg.customers.get(w, ())]
        out[w] = fleet_table.encode_parts([(c, a.count, a.failed, a.server_errors, a.sum_ns) for c, a in aggs])
    return out


def _points(seg: _Segment, level: RollupLevel, keys: set[tuple[str, int]]) -> list[RollupPoint]:
    out = []
    tables = _fleet_tables(seg, {w for c, w in keys if c == FLEET_CUSTOMER})
    for customer, window in keys:
        agg = seg.aggs[(customer, window)]
        out.append(
            RollupPoint(
                level.measurement,
                customer,
                window * level.window_ns + seg.ident_ns,
                level.window_ns,
                agg.count,
                agg.failed,
                agg.server_errors,
                agg.sum_ns,
                agg.hist.encode(),
                tables.get(window, ()) if customer == FLEET_CUSTOMER else (),
            )
        )
    return out


def _file_size(path: str, file_key: int) -> int | None:
    """Where the complete lines of the plain file at `path` end now, if it is still the file
    `file_key` (None: gone, another file, compressed — offsets then count decompressed bytes — or no
    path known). A partial last line does not count: no run reads it before its newline arrives."""
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        ident = identify_fd(fd, final=False)
        if ident.fingerprint != file_key or ident.compression:
            return None
        return line_start_before(fd, os.fstat(fd).st_size)
    except OSError:
        return None
    finally:
        os.close(fd)


class _SnapshotUnpickler(pickle.Unpickler):
    """A snapshot names its classes by module path: one pickled while this step was the module
    `logpulse.flow.rollups` (processors with a recovery store) loads its classes from here."""

    def find_class(self, module: str, name: str, /) -> Any:
        return super().find_class(__name__ if module == "logpulse.flow.rollups" else module, name)


class RollupLogic(StatefulBatchLogic[RollupPart, RollupBatch, bytes]):
    """Bytewax keyed state of one file's rollups (see the module docstring).

    Catching up: an earlier run of the same file (killed after its last snapshot, or the same file
    ingested before) may already have written points of the segments being read with values from
    further into the file than this run has got. Rewriting them with this run's smaller cumulative
    values would take lines out of InfluxDB until the replay catches up — and for good, if the
    processor is stopped first. So the points of a segment still being read are held back (kept dirty,
    and in the snapshot) until reading has passed the end of the file's complete lines when this
    execution first saw it, which bounds where any earlier run can have got; a segment that closes is
    written at once (it is complete, so at least what anyone wrote for it). `ingest`'s end and an idle
    close write everything.
    """

    def __init__(
        self, state: FileRollups, segment_bytes: int, flush_s: float, idle_close_s: float, recoverable: bool = True
    ) -> None:
        self.state = state
        self.segment_bytes = segment_bytes
        self.flush_s = flush_s
        self.idle_close_s = idle_close_s
        self.recoverable = recoverable
        self.catch_up_to = _file_size(state.path, state.file_key)
        """Reading must pass this offset before a growing segment is written (None: not known yet)."""

    @classmethod
    def builder(
        cls, segment_bytes: int, flush_s: float, idle_close_s: float, *, recoverable: bool = True
    ) -> Callable[[bytes | None], RollupLogic]:
        """`recoverable=False` (`ingest`, no recovery): Bytewax still asks for snapshots every epoch,
        and pickling a file's state for nothing cost more than the aggregation itself (measured)."""

        def build(resume: bytes | None) -> RollupLogic:
            state = _upgrade(_SnapshotUnpickler(io.BytesIO(resume)).load()) if resume else FileRollups(-1)
            # idle time counts from now: a state restored after hours of downtime must first absorb
            # the replay (which its points already contain), not be closed before it arrives
            state.last_data = time.time()
            return cls(state, segment_bytes, flush_s, idle_close_s, recoverable)

        return build

    @property
    def caught_up(self) -> bool:
        """Has reading passed everything an earlier run of this file can have written points for?"""
        return self.catch_up_to is not None and self.state.next_offset >= self.catch_up_to

    def on_batch(self, values: list[RollupPart]) -> tuple[list[RollupBatch], bool]:
        st = self.state
        out: list[RollupPoint] = []
        for part in values:
            if part.end <= st.next_offset:
                continue  # the same content read again in this run (a copy): already aggregated
            if part.start < st.next_offset:
                log.warning(
                    "file %s: chunk [%d, %d) overlaps what was aggregated (up to %d); its lines are counted",
                    part.file_key,
                    part.start,
                    part.end,
                    st.next_offset,
                )
            if part.path and part.path != st.path:
                st.path = part.path
            if self.catch_up_to is None:
                self.catch_up_to = max(_file_size(part.path, part.file_key) or 0, part.end)
            st.file_key = part.file_key
            continuous = part.start == st.next_offset
            line_values = _LineValues.of(part)
            for i, level in enumerate(ROLLUP_LEVELS):
                size = self.segment_bytes * level.segment_factor
                index = part.start // size
                seg = st.segments[i]
                if seg is None or seg.index != index:
                    if seg is not None:
                        out += _points(seg, level, seg.dirty)  # the closing segment's last (complete) values
                    seg_start = index * size
                    first = seg_start if (continuous or part.start == seg_start) else part.start
                    seg = st.segments[i] = _Segment(index, identity_offset(part.file_key, level, index, first))
                _aggregate(seg, level, part, line_values)
            st.next_offset = part.end
        st.last_data = time.time()
        if st.flush_at is None:
            st.flush_at = st.last_data + self.flush_s
        return ([RollupBatch(out)] if out else []), StatefulBatchLogic.RETAIN

    def _flush(self, *, final: bool = False) -> list[RollupPoint]:
        """The dirty points of the segments being read; none while catching up unless `final`."""
        self.state.flush_at = None
        if not (final or self.caught_up):
            return []  # held back (still dirty): the next batch schedules the next try
        out: list[RollupPoint] = []
        for i, level in enumerate(ROLLUP_LEVELS):
            seg = self.state.segments[i]
            if seg is not None and seg.dirty:
                out += _points(seg, level, seg.dirty)
                seg.dirty = set()
        return out

    def on_notify(self) -> tuple[list[RollupBatch], bool]:
        idle = time.time() - self.state.last_data >= self.idle_close_s
        out = self._flush(final=idle)  # dropped: its last values must be written whatever they are
        return ([RollupBatch(out)] if out else []), idle

    def on_eof(self) -> tuple[list[RollupBatch], bool]:
        # `ingest` read its files to the end and keeps no snapshot: write everything. `process` stops
        # (a signal): what is held back stays in the final snapshot for the next run
        out = self._flush(final=not self.recoverable)
        return ([RollupBatch(out)] if out else []), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        at = self.state.flush_at
        if at is None:
            at = self.state.last_data + self.idle_close_s
        return datetime.fromtimestamp(at, UTC)

    def snapshot(self) -> bytes:
        if not self.recoverable:
            return b""
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)
