"""The rollup step: Bytewax keyed state per file (`RollupLogic`), its snapshots, and when points are
written (flushes, segment ends, catching up after a restart, idle close). The identity design the
step follows is in `identity.py`; the aggregation in `aggregate.py`.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bytewax.operators import StatefulBatchLogic

from logpulse.model import RollupBatch, RollupPoint
from logpulse.rollups.aggregate import (
    Aggregate,
    LineValues,
    RollupPart,
    SegmentAggregates,
    aggregate,
    points,
)
from logpulse.rollups.identity import identity_offset
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS, RollupLevel
from logpulse.tailing.fingerprint import identify_fd
from logpulse.tailing.reader import line_start_before

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FileRollups:
    """The rollup state of one file (its key is the file's fingerprint): what a snapshot holds."""

    file_key: int
    next_offset: int = -1
    segments: list[SegmentAggregates | None] = field(default_factory=lambda: [None] * len(ROLLUP_LEVELS))
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


def _rebuild_fleet(seg: SegmentAggregates, level: RollupLevel) -> None:
    """A snapshot taken before the fleet-wide aggregates existed: build them from the customers' (which
    hold every line of the segment so far), so the `*` points of this identity are complete, and mark
    them for the next flush."""
    for (_, window), agg in list(seg.aggs.items()):
        k = (FLEET_CUSTOMER, window)
        fleet = seg.aggs.get(k)
        if fleet is None:
            fleet = seg.aggs[k] = Aggregate(0, 0, 0, LatencyHistogram(level.max_exact), 0)
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


def _file_size(path: str, file_key: int) -> int | None:
    """Where the complete lines of the plain file at `path` end now, if it is still the file
    `file_key` (None: gone, another file, compressed — offsets then count decompressed bytes — or no
    path known). A partial last line does not count: no run reads it before its newline arrives.

    Why the step opens the file itself rather than take the size from tailing: the bound is needed
    when a restored state is built, before the replay's first chunk arrives, and it must be where the
    file's complete lines end when this execution first sees it — tailing's readers stat files on
    their own schedule, on other workers, and chunks carry no file size (carrying one would change
    `Chunk`, `ParsedChunk` and every parser for one number). It is read once per file state and
    execution, read-only, and the fingerprint check makes a replaced file count as unknown."""
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


_SNAPSHOT_CLASSES: dict[str, type] = {
    "FileRollups": FileRollups,
    "_Segment": SegmentAggregates,
    "_Agg": Aggregate,
}
"""The classes of a snapshot pickled while the rollup step was one module (`logpulse.flow.rollups`),
by the names they had there."""


class _SnapshotUnpickler(pickle.Unpickler):
    """A snapshot names its classes by module path and name: those of the one-module layout
    (processors with a recovery store) load as the classes they are now."""

    def find_class(self, module: str, name: str, /) -> Any:
        if module == "logpulse.flow.rollups" and name in _SNAPSHOT_CLASSES:
            return _SNAPSHOT_CLASSES[name]
        return super().find_class(module, name)


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
            line_values = LineValues.of(part)
            for i, level in enumerate(ROLLUP_LEVELS):
                size = self.segment_bytes * level.segment_factor
                index = part.start // size
                seg = st.segments[i]
                if seg is None or seg.index != index:
                    if seg is not None:
                        out += points(seg, level, seg.dirty)  # the closing segment's last (complete) values
                    seg_start = index * size
                    first = seg_start if (continuous or part.start == seg_start) else part.start
                    seg = st.segments[i] = SegmentAggregates(index, identity_offset(part.file_key, level, index, first))
                aggregate(seg, level, part, line_values)
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
                out += points(seg, level, seg.dirty)
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
