"""Rollups: per customer and window (15 min, 1 h, 1 d of UTC event time) count, failed, server errors, sum and a
mergeable latency histogram, written as points whose identity makes every rewrite idempotent.

Identity design
---------------
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
  this execution first saw it (which bounds where any earlier run can have got; `step.RollupLogic`); what
  is held back stays dirty in the snapshot. A second `ingest` of a file likewise leaves the first's
  values alone until it has read the whole file (stopped by a signal before that, it writes none of
  the held-back points: never a value below what the first ingest stored).
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
  bucketing the lines again (`aggregate.py`). Its packed per-customer table (`storage/fleet_table.py`)
  is built when the point is written, from the same state (`aggregate.rollup_rows`), so it is cumulative too.
* `first_offset` is the segment start when reading went through it from the start, else the offset
  reading began at (START_AT=end, a resume without recovery): a partial segment then never overwrites
  the full one written earlier with a smaller value.
* **sealed**: once reading has gone on, without a gap, past a segment's end, its identity's values are
  final (every rule above rewrites the same ones); the step emits a seal with the segment's last
  points, which the sink writes after them (`storage/seals.py`), and `logpulse compact` may then merge
  the identity's points in windows still open. Never at the end of input or on an idle close: a
  file's last segment can still grow.

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

from logpulse.model import Chunk
from logpulse.storage.points import RollupLevel


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


def identity_offset(file_key: int, level: RollupLevel, segment: int, first_offset: int) -> int:
    """The deterministic offset in [0, window) of an identity's points."""
    digest = hashlib.blake2b(f"{file_key}:{level.measurement}:{segment}:{first_offset}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % level.window_ns
