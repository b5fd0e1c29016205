"""The log file source: one Bytewax partition per file, resumable, tailing, rotation-aware.

Each file matching `LOG_PATH` (paths and globs, expanded when the dataflow starts) is a partition,
so several files are read by several workers in parallel. A partition emits `Chunk`s of complete
lines only (up to `read_chunk_bytes` each), as many as are available, and sleeps at end of file
through `next_awake` (no spinning), checking again every `poll_interval_s`.

Resume state (in Bytewax recovery snapshots) identifies the file by a fingerprint of its first line
and the byte offset of the next unread line, so after a restart:
- same file at the path: continue at the offset (if it shrank below it: copy-truncate, start at 0);
- another file at the path (it was rotated by rename while the processor was down): the old file is
  looked up among its siblings (`api_requests.log.1`, ...) by fingerprint and finished first; then the
  new file is read from its start.
- nothing at the path yet, but the old file renamed beside it: that one is finished while waiting.
While running, rename rotation is noticed as an inode change at end of file: the old descriptor is
read to its end, then the new file from 0. Copy-truncate is noticed as size < offset or a changed
first line. After either, the next file at the path is read from 0 whatever `start_at` says
(`start_at="end"` only skips the history of a file never seen before). A partial last line is not
emitted until its newline arrives (except at the very end of a file in `ingest`, where nothing more
will come).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from logpulse import metrics
from logpulse.model import Chunk

log = logging.getLogger(__name__)
_MAX_FIRST_LINE = 1 << 20
_NO_FILE = -1  # fingerprint in a resume state: "the next file at the path is read from 0"
_GLOB_CHARS = set("*?[")


def _read_next_from_start() -> dict[str, Any]:
    """Resume state after a rotation or truncation: whatever file comes next is new, read from 0
    (START_AT only applies to a file never seen before)."""
    return {"fingerprint": _NO_FILE, "offset": 0, "inode": -1, "old": None}


def file_fingerprint(first_line: bytes) -> int:
    """A file's identity: blake2b of its first line (newline included), as a non-negative int63."""
    return int.from_bytes(hashlib.blake2b(first_line, digest_size=8).digest(), "big") >> 1


def _first_line(fd: int) -> bytes | None:
    """The complete first line of an open file, or None while it has no newline yet."""
    head = os.pread(fd, 4096, 0)
    cut = head.find(b"\n")
    if cut < 0 and len(head) == 4096:
        head = os.pread(fd, _MAX_FIRST_LINE, 0)
        cut = head.find(b"\n")
    return head[: cut + 1] if cut >= 0 else None


def expand(patterns: list[str], *, must_exist: bool) -> list[str]:
    """Partitions for patterns: glob matches (files only) and literal paths, sorted, no duplicates."""
    found: set[str] = set()
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            found.update(os.path.normpath(p) for p in glob.glob(pattern) if os.path.isfile(p))
        elif must_exist and not os.path.isfile(pattern):
            raise FileNotFoundError(f"log file not found: {pattern}")
        else:
            found.add(os.path.normpath(pattern))
    if must_exist and not found:
        raise FileNotFoundError(f"no log file matches {', '.join(patterns)}")
    return sorted(found)


@dataclass
class _OpenFile:
    """A file being read: descriptor, identity and the offset of the next unread line."""

    path: str
    fd: int
    fingerprint: int
    offset: int
    inode: int

    def close(self) -> None:
        os.close(self.fd)


def _find_rotated(path: str, fingerprint: int) -> str | None:
    """A sibling of `path` (same directory, name starting with its name) with this fingerprint."""
    directory, name = os.path.split(path)
    for entry in sorted(os.listdir(directory or ".")):
        candidate = os.path.join(directory, entry)
        if entry == name or not entry.startswith(name) or not os.path.isfile(candidate):
            continue
        fd = os.open(candidate, os.O_RDONLY)
        try:
            first = _first_line(fd)
        finally:
            os.close(fd)
        if first is not None and file_fingerprint(first) == fingerprint:
            return candidate
    return None


class FilePartition(StatefulSourcePartition[Chunk, dict[str, Any] | None]):
    """One file path: reads complete lines, follows rotation, snapshots its position."""

    def __init__(
        self,
        path: str,
        resume: dict[str, Any] | None,
        *,
        follow: bool,
        start_at: str,
        poll_interval_s: float,
        read_chunk_bytes: int,
    ) -> None:
        self._path = path
        self._resume = resume
        self._follow = follow
        self._start_at = start_at
        self._poll = timedelta(seconds=poll_interval_s)
        self._chunk = read_chunk_bytes
        self._current: _OpenFile | None = None
        self._old: _OpenFile | None = None  # a rotated file to finish before the current one
        self._idle = False
        self._backlog = metrics.BACKLOG_BYTES.labels(path)

    # -- opening -----------------------------------------------------------------------------
    def _open(self, path: str) -> tuple[int, bytes] | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        first = _first_line(fd)
        if first is None:  # empty or first line incomplete: no identity yet
            os.close(fd)
            return None
        return fd, first

    def _open_current(self) -> bool:
        """Open the file at the path, placing the offset from the resume state or START_AT."""
        opened = self._open(self._path)
        if opened is None:
            self._finish_renamed_while_down()
            return False
        fd, first = opened
        st = os.fstat(fd)
        fp = file_fingerprint(first)
        resume, self._resume = self._resume, None
        offset = 0
        if resume is not None:
            if resume["fingerprint"] == fp:
                offset = resume["offset"] if resume["offset"] <= st.st_size else 0
            elif resume["fingerprint"] != _NO_FILE:
                self._recover_rotated(resume)
            old = resume.get("old")
            if old is not None and self._old is None:
                self._recover_rotated(old)
        elif self._start_at == "end":
            offset = self._line_start_before(fd, st.st_size)
        self._current = _OpenFile(self._path, fd, fp, offset, st.st_ino)
        return True

    def _finish_renamed_while_down(self) -> None:
        """Resumed, and nothing (complete) at the path yet: if the file we were reading was renamed
        beside it, finish that one now rather than when a new file appears."""
        resume = self._resume
        if self._old is not None or resume is None:
            return
        for state in (resume.get("old"), resume if resume["fingerprint"] != _NO_FILE else None):
            if state is not None and _find_rotated(self._path, state["fingerprint"]) is not None:
                self._recover_rotated(state)
                if state is resume:
                    self._resume = _read_next_from_start()
                else:
                    self._resume = {**resume, "old": None}
                return

    def _recover_rotated(self, state: dict[str, Any]) -> None:
        """After a restart, finish the file that was rotated away, found by its fingerprint."""
        found = _find_rotated(self._path, state["fingerprint"])
        if found is None:
            log.warning(
                "%s was replaced and its previous file (read to offset %d) was not found beside it; "
                "lines after that offset in the old file are not read",
                self._path,
                state["offset"],
            )
            return
        fd = os.open(found, os.O_RDONLY)
        self._old = _OpenFile(found, fd, state["fingerprint"], state["offset"], os.fstat(fd).st_ino)
        log.info("%s was rotated; finishing %s from offset %d first", self._path, found, state["offset"])

    @staticmethod
    def _line_start_before(fd: int, size: int) -> int:
        """The offset just after the last newline at or before `size` (START_AT=end)."""
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            cut = os.pread(fd, pos - start, start).rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            pos = start
        return 0

    # -- reading -----------------------------------------------------------------------------
    def _read(self, f: _OpenFile, *, final: bool) -> Chunk | None:
        """The next chunk of complete lines of `f` (a trailing partial line too if `final`)."""
        size = self._chunk
        data = os.pread(f.fd, size, f.offset)
        cut = data.rfind(b"\n") + 1
        while cut == 0 and len(data) == size:  # one line longer than a chunk: read more
            size *= 2
            data = os.pread(f.fd, size, f.offset)
            cut = data.rfind(b"\n") + 1
        if not data:
            return None
        if cut == 0 or (final and cut < len(data) and len(data) < size):
            if not final:
                return None  # a partial line: wait for its newline
            cut = len(data)
        chunk = Chunk(f.path, f.fingerprint, f.offset, data[:cut])
        f.offset += cut
        return chunk

    def _rotated(self, f: _OpenFile) -> bool:
        """Has the path been given to another file (rename rotation)?"""
        try:
            return os.stat(self._path).st_ino != f.inode
        except FileNotFoundError:
            return True

    def _truncated(self, f: _OpenFile) -> bool:
        """Copy-truncate: the file shrank below our offset, or its first line changed."""
        if os.fstat(f.fd).st_size < f.offset:
            return True
        first = _first_line(f.fd)
        return first is not None and file_fingerprint(first) != f.fingerprint

    def next_batch(self) -> list[Chunk]:
        self._idle = False
        if self._old is not None:
            chunk = self._read(self._old, final=True)
            if chunk is not None:
                return [chunk]
            log.info("finished rotated file %s", self._old.path)
            self._old.close()
            self._old = None
        if self._current is None:
            if not self._open_current():
                if self._old is not None:  # a renamed file found while waiting: read it first
                    return []
                if not self._follow:
                    raise StopIteration()
                self._idle = True
                return []
            if self._old is not None:  # resumed after a rotation: finish the old file first
                return []
        cur = self._current
        assert cur is not None
        chunk = self._read(cur, final=not self._follow)
        if chunk is not None:
            self._backlog.set(max(0, os.fstat(cur.fd).st_size - cur.offset))
            return [chunk]
        if not self._follow:
            self._backlog.set(0)
            raise StopIteration()
        # At the end of the current file: was it rotated or truncated?
        if self._rotated(cur):
            log.info("%s was rotated (rename); finishing the old file, then reading the new one", self._path)
            self._old, self._current = cur, None
            self._resume = _read_next_from_start()
            return []
        if self._truncated(cur):
            log.warning("%s was truncated (copy-truncate); reading it again from the start", self._path)
            cur.close()
            self._current = None
            self._resume = _read_next_from_start()
            return []
        self._backlog.set(max(0, os.fstat(cur.fd).st_size - cur.offset))
        self._idle = True
        return []

    def next_awake(self) -> datetime | None:
        return datetime.now(UTC) + self._poll if self._idle else None

    def snapshot(self) -> dict[str, Any] | None:
        cur = self._current
        old = self._old
        old_state = None if old is None else {"fingerprint": old.fingerprint, "offset": old.offset}
        if cur is None:
            if old_state is not None:  # between rotation and opening the new file
                return {**_read_next_from_start(), "old": old_state}
            return self._resume  # not opened yet: what we were resumed with, or "next file from 0"
        return {"fingerprint": cur.fingerprint, "offset": cur.offset, "inode": cur.inode, "old": old_state}

    def close(self) -> None:
        for f in (self._old, self._current):
            if f is not None:
                f.close()


class LogSource(FixedPartitionedSource[Chunk, dict[str, Any] | None]):
    """Files matching `patterns` as partitions; `follow` tails them, otherwise reads to their end.

    Files that start matching a glob after the dataflow started are picked up at the next start.
    """

    def __init__(
        self,
        patterns: list[str],
        *,
        follow: bool,
        start_at: str = "beginning",
        poll_interval_s: float = 0.2,
        read_chunk_bytes: int = 1024 * 1024,
    ) -> None:
        self._patterns = patterns
        self._follow = follow
        self._start_at = start_at
        self._poll = poll_interval_s
        self._chunk = read_chunk_bytes

    def list_parts(self) -> list[str]:
        return expand(self._patterns, must_exist=not self._follow)

    def build_part(self, step_id: str, for_part: str, resume_state: dict[str, Any] | None) -> FilePartition:
        return FilePartition(
            for_part,
            resume_state,
            follow=self._follow,
            start_at=self._start_at,
            poll_interval_s=self._poll,
            read_chunk_bytes=self._chunk,
        )
