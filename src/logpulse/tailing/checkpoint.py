"""Versioned resume state: where each file (by identity) has been read to.

The state a partition hands to Bytewax at every snapshot is a `ResumeState`: the checkpoints of the
files it owns, keyed by their fingerprint (not their path, so a renamed or copied file continues at
its offset), plus whether the first discovery has happened (`START_AT` applies only before it).

Version history (`load` accepts each):
- 1: a dict `{"fingerprint", "offset", "inode", "old": {"fingerprint", "offset"} | None}`
  per file path; fingerprint -1 meant "the next file at the path is read from 0".
- 2: `ResumeState` below (with the time of the first discovery). Checkpoints carry a CRC of the
  bytes before the offset for verification (None for checkpoints migrated from version 1: only the
  newline before the offset is checked).

The state stays bounded: checkpoints of files not seen on disk for `forget_after_s` are dropped,
and at most `MAX_CHECKPOINTS` are kept (the longest unseen go first).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

VERSION = 2
MAX_CHECKPOINTS = 100_000
_V1_NO_FILE = -1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One file's position: the offset of its next unread line (in the decompressed stream for a
    compressed file), a CRC of the bytes before it, where it was last seen and when (wall time)."""

    fingerprint: int
    offset: int
    tail_crc: int | None
    path: str
    seen_at: float


@dataclass(frozen=True, slots=True)
class ResumeState:
    """A partition's snapshot (pickled by Bytewax into its recovery store)."""

    started: bool
    checkpoints: tuple[Checkpoint, ...] = ()
    version: int = VERSION
    started_at: float = 0.0  # wall time of the first discovery: rotated siblings modified later are read


def load(snapshot: object, *, path_hint: str = "") -> ResumeState | None:
    """The resume state of a snapshot of any known version (None: nothing was snapshotted)."""
    if snapshot is None:
        return None
    if isinstance(snapshot, ResumeState):
        return snapshot
    if isinstance(snapshot, dict) and "fingerprint" in snapshot:
        return _from_v1(snapshot, path_hint)
    raise ValueError(f"unknown resume state for {path_hint or 'a log partition'}: {type(snapshot).__name__}")


def _from_v1(state: dict[str, Any], path: str) -> ResumeState:
    now = time.time()
    checkpoints = []
    for entry in (state.get("old"), state):
        if entry is not None and entry["fingerprint"] != _V1_NO_FILE:
            checkpoints.append(Checkpoint(int(entry["fingerprint"]), int(entry["offset"]), None, path, now))
    return ResumeState(started=True, checkpoints=tuple(checkpoints), started_at=now)


@dataclass
class Checkpoints:
    """The mutable table a partition keeps between snapshots."""

    started: bool = False
    by_fingerprint: dict[int, Checkpoint] = field(default_factory=dict)
    started_at: float = 0.0

    @classmethod
    def from_state(cls, state: ResumeState | None) -> Checkpoints:
        if state is None:
            return cls()
        return cls(state.started, {c.fingerprint: c for c in state.checkpoints}, state.started_at)

    def get(self, fingerprint: int) -> Checkpoint | None:
        return self.by_fingerprint.get(fingerprint)

    def put(self, checkpoint: Checkpoint) -> None:
        self.by_fingerprint[checkpoint.fingerprint] = checkpoint

    def touch(self, fingerprints: Iterable[int], now: float) -> None:
        """Mark files as still present on disk."""
        for fp in fingerprints:
            c = self.by_fingerprint.get(fp)
            if c is not None:
                self.by_fingerprint[fp] = replace(c, seen_at=now)

    def forget(self, older_than: float, keep: set[int]) -> int:
        """Drop checkpoints of files unseen since `older_than` (except `keep`); returns how many."""
        gone = [fp for fp, c in self.by_fingerprint.items() if c.seen_at < older_than and fp not in keep]
        if len(self.by_fingerprint) - len(gone) > MAX_CHECKPOINTS:
            rest = sorted(
                (c for fp, c in self.by_fingerprint.items() if fp not in keep and c.seen_at >= older_than),
                key=lambda c: c.seen_at,
            )
            gone += [c.fingerprint for c in rest[: len(self.by_fingerprint) - len(gone) - MAX_CHECKPOINTS]]
        for fp in gone:
            del self.by_fingerprint[fp]
        return len(gone)

    def state(self, live: Iterable[Checkpoint] = ()) -> ResumeState:
        """The snapshot: the table with the positions of open readers laid over it."""
        merged = dict(self.by_fingerprint)
        for c in live:
            merged[c.fingerprint] = c
        return ResumeState(self.started, tuple(merged.values()), started_at=self.started_at)
