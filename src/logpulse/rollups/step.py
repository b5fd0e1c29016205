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

from logpulse.model import RollupBatch, RollupRows
from logpulse.rollups import legacy
from logpulse.rollups.aggregate import LineValues, RollupPart, aggregate, rollup_rows
from logpulse.rollups.identity import identity_offset
from logpulse.rollups.segment import CustomerIndex, SegmentColumns
from logpulse.storage.points import ROLLUP_LEVELS, RollupLevel
from logpulse.storage.seals import Seal
from logpulse.tailing.fingerprint import identify_fd
from logpulse.tailing.reader import line_start_before

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FileRollups:
    """The rollup state of one file (its key is the file's fingerprint): what a snapshot holds."""

    file_key: int
    next_offset: int = -1
    segments: list[SegmentColumns | None] = field(default_factory=lambda: [None] * len(ROLLUP_LEVELS))
    last_data: float = 0.0  # wall time of the last chunk in this execution (idle close)
    flush_at: float | None = None
    path: str = ""  # where the file was last read (a snapshot from before this field restores "")


def _upgrade(state: FileRollups) -> FileRollups:
    """A snapshot of an earlier layout: segments kept as one object per customer-window become columns
    (`legacy.py`, which also completes snapshots older than `server_errors` or the fleet aggregates)."""
    if not hasattr(state, "path"):
        state.path = ""
    for i, seg in enumerate(state.segments):
        if isinstance(seg, legacy.SegmentAggregates):
            state.segments[i] = legacy.to_columns(seg, ROLLUP_LEVELS[i])
    return state


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


_SNAPSHOT_CLASSES: dict[tuple[str, str], type] = {
    ("logpulse.flow.rollups", "FileRollups"): FileRollups,
    ("logpulse.flow.rollups", "_Segment"): legacy.SegmentAggregates,
    ("logpulse.flow.rollups", "_Agg"): legacy.Aggregate,
    ("logpulse.rollups.aggregate", "SegmentAggregates"): legacy.SegmentAggregates,
    ("logpulse.rollups.aggregate", "Aggregate"): legacy.Aggregate,
}
"""The classes of snapshots pickled by earlier layouts (the rollup step as one module
`logpulse.flow.rollups`; segments as one object per customer-window), by the names they had there."""


class _SnapshotUnpickler(pickle.Unpickler):
    """A snapshot names its classes by module path and name: those of earlier layouts (processors
    with a recovery store) load as the classes that read them now."""

    def find_class(self, module: str, name: str, /) -> Any:
        cls = _SNAPSHOT_CLASSES.get((module, name))
        return cls if cls is not None else super().find_class(module, name)


def _seal(seg: SegmentColumns, level: RollupLevel) -> str:
    """The seal of a segment reading has passed (`storage/seals.py`): the sink writes it after the
    segment's last points, which this batch carries, are acknowledged."""
    first, last = seg.window_span()
    return Seal(level.measurement, seg.ident_ns, first * level.window_ns, last * level.window_ns).line()


class RollupLogic(StatefulBatchLogic[RollupPart, RollupBatch, bytes]):
    """Bytewax keyed state of one file's rollups (see the module docstring).

    Catching up: an earlier run of the same file (killed after its last snapshot, or the same file
    ingested before) may already have written points of the segments being read with values from
    further into the file than this run has got. Rewriting them with this run's smaller cumulative
    values would take lines out of InfluxDB until the replay catches up — and for good, if the
    processor is stopped first. So the points of a segment still being read are held back (kept dirty,
    and in the snapshot) until reading has passed the end of the file's complete lines when this
    execution first saw it, which bounds where any earlier run can have got; a segment that closes is
    written at once (it is complete, so at least what anyone wrote for it). An idle close writes
    everything; the end of input writes what has caught up (an `ingest` read to its end has).
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
        self.customers = CustomerIndex()
        """The file's customers numbered once per part for every level (`segment.CustomerIndex`)."""

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
        out: list[RollupRows] = []
        seals: list[str] = []
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
            known = (self.customers.of(part.customers), self.customers)
            for i, level in enumerate(ROLLUP_LEVELS):
                size = self.segment_bytes * level.segment_factor
                index = part.start // size
                seg = st.segments[i]
                if seg is None or seg.index != index:
                    if seg is not None:
                        if (closing := rollup_rows(seg, level)) is not None:
                            out.append(closing)  # the closing segment's last (complete) values
                        if continuous and index > seg.index:  # read on past its end: its values are final
                            seals.append(_seal(seg, level))
                    seg_start = index * size
                    first = seg_start if (continuous or part.start == seg_start) else part.start
                    seg = st.segments[i] = SegmentColumns(index, identity_offset(part.file_key, level, index, first))
                aggregate(seg, level, part, line_values, known)
            st.next_offset = part.end
        st.last_data = time.time()
        if st.flush_at is None:
            st.flush_at = st.last_data + self.flush_s
        return ([RollupBatch(out, seals)] if out or seals else []), StatefulBatchLogic.RETAIN

    def _flush(self, *, final: bool = False, last: bool = False) -> list[RollupRows]:
        """The dirty points of the segments being read; none while catching up unless `final`.
        `last`: the state is not used again, so each level's segment is let go once its points are
        built (at 10,000 customers a level's state is tens of MB, while the next level's points
        are built)."""
        self.state.flush_at = None
        if not (final or self.caught_up):
            return []  # held back (still dirty): the next batch schedules the next try
        out: list[RollupRows] = []
        for i, level in enumerate(ROLLUP_LEVELS):
            seg = self.state.segments[i]
            if seg is not None and (dirty := rollup_rows(seg, level)) is not None:
                out.append(dirty)
                seg.clear_dirty()
            if last:
                self.state.segments[i] = None
        return out

    def on_notify(self) -> tuple[list[RollupBatch], bool]:
        idle = time.time() - self.state.last_data >= self.idle_close_s
        out = self._flush(final=idle)  # dropped: its last values must be written whatever they are
        return ([RollupBatch(out)] if out else []), idle

    def on_eof(self) -> tuple[list[RollupBatch], bool]:
        # an `ingest` that read its files to the end has caught up: everything is written. One stopped
        # by a signal before it caught up writes nothing held back: an earlier ingest of the same file
        # may have stored more than this one read, and a partial value would lower it (run it again to
        # complete). `process` keeps what is held back in its final snapshot for the next run
        if not self.recoverable:  # `ingest`: nothing follows the end of input, not even a snapshot
            out = self._flush(last=True)
            return ([RollupBatch(out)] if out else []), StatefulBatchLogic.DISCARD
        out = self._flush()
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
