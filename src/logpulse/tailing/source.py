"""The log file source for Bytewax: partitions are groups of patterns split into shards.

The parts, each with one job (as in Vector's file source):
- `discovery`: which files the patterns name now (re-globbed), and how they map onto partitions
  (the decision is written there);
- `fingerprint`: a file's identity by content, compression by magic bytes;
- `reader`: one open file read in chunks of complete lines, from a verified offset;
- `watcher`: one partition's files — discovered, read fairly, rotated, closed when idle;
- `checkpoint`: the typed, versioned resume state;
- this module: the Bytewax `FixedPartitionedSource` around them.

A partition emits `Chunk`s of complete lines (up to `read_chunk_bytes` each) and sleeps at the end of
its files through `next_awake` (no spinning), checking open files every `poll_interval_s` and
discovering every `discover_interval_s`. A partial last line is not emitted until its newline arrives
(except when nothing more can come: `ingest`, a deleted or a compressed file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from logpulse.config import Settings
from logpulse.model import Chunk
from logpulse.tailing.checkpoint import ResumeState, load
from logpulse.tailing.discovery import PathsProvider, expand
from logpulse.tailing.fingerprint import file_fingerprint
from logpulse.tailing.reader import BUDGET
from logpulse.tailing.watcher import Watcher, WatchOptions

__all__ = ["FilePartition", "LogSource", "expand", "file_fingerprint"]


class FilePartition(StatefulSourcePartition[Chunk, ResumeState]):
    """One partition: the files of `patterns` whose fingerprint falls in shard `shard` of `shards`."""

    def __init__(
        self,
        patterns: str | Sequence[str],
        resume: object,
        *,
        follow: bool,
        start_at: str = "beginning",
        poll_interval_s: float = 0.2,
        read_chunk_bytes: int = 1 << 20,
        discover_interval_s: float | None = None,
        close_idle_s: float = 10.0,
        forget_after_s: float = 86400.0,
        exclude: Sequence[str] = (),
        earlier: Sequence[str] = (),
        later: Sequence[str] = (),
        shard: int = 0,
        shards: int = 1,
        name: str = "",
        quiet: Sequence[str] = (),
    ) -> None:
        group = [patterns] if isinstance(patterns, str) else list(patterns)
        options = WatchOptions(
            follow=follow,
            start_at=start_at,
            read_chunk_bytes=read_chunk_bytes,
            discover_interval_s=poll_interval_s if discover_interval_s is None else discover_interval_s,
            close_idle_s=close_idle_s,
            forget_after_s=forget_after_s,
        )
        self._poll = timedelta(seconds=poll_interval_s)
        self._idle = False
        self._watcher = Watcher(
            PathsProvider(group, exclude, earlier, later, quiet),
            load(resume, path_hint=group[0] if len(group) == 1 else ""),
            options,
            shard=shard,
            shards=shards,
            name=name,
        )

    def next_batch(self) -> list[Chunk]:
        out = self._watcher.poll()
        if out is None:
            raise StopIteration()
        self._idle = not out and not self._watcher.busy
        return out

    def next_awake(self) -> datetime | None:
        return datetime.now(UTC) + self._poll if self._idle else None

    def snapshot(self) -> ResumeState:
        return self._watcher.state()

    def close(self) -> None:
        self._watcher.close()


class LogSource(FixedPartitionedSource[Chunk, ResumeState]):
    """Files matching `patterns` (re-discovered while following), in partitions as `discovery`
    describes: with `by_pattern` (the default when following) one group per pattern, else one group
    of all patterns; each group split into `shards` partitions by fingerprint."""

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        follow: bool,
        start_at: str = "beginning",
        poll_interval_s: float = 0.2,
        read_chunk_bytes: int = 1 << 20,
        discover_interval_s: float = 1.0,
        exclude: Sequence[str] = (),
        shards: int = 1,
        by_pattern: bool | None = None,
        max_open_files: int | None = None,
        close_idle_s: float = 10.0,
        forget_after_s: float = 86400.0,
        quiet: Sequence[str] = (),
    ) -> None:
        self._patterns = [os.path.normpath(p) for p in patterns]
        self._follow = follow
        self._start_at = start_at
        self._poll = poll_interval_s
        self._chunk = read_chunk_bytes
        self._discover = discover_interval_s
        self._exclude = list(exclude)
        self._shards = max(1, shards)
        self._by_pattern = follow if by_pattern is None else by_pattern
        self._close_idle = close_idle_s
        self._forget = forget_after_s
        self._quiet = list(quiet)
        if max_open_files is not None:
            BUDGET.limit = max_open_files

    @classmethod
    def from_settings(cls, settings: Settings, patterns: Sequence[str], *, follow: bool, shards: int) -> LogSource:
        """The source as `process` (follow) or `ingest` configures it (the ingest spool, which
        `log_globs` adds, is not announced as missing: it exists once POST /ingest is used)."""
        return cls(
            patterns,
            follow=follow,
            start_at=settings.start_at,
            poll_interval_s=settings.poll_interval_s,
            read_chunk_bytes=settings.read_chunk_bytes,
            discover_interval_s=settings.discover_interval_s,
            exclude=settings.log_excludes(),
            shards=shards,
            max_open_files=settings.max_open_files,
            close_idle_s=settings.close_idle_s,
            forget_after_s=settings.forget_after_s,
            quiet=[settings.ingest_spool_path] if settings.ingest_spool_path.strip() else [],
        )

    def _groups(self) -> list[tuple[str, list[str]]]:
        if self._by_pattern:
            unique = list(dict.fromkeys(self._patterns))
            return [(p, [p]) for p in unique]
        return [("ingest", self._patterns)]

    def list_parts(self) -> list[str]:
        keys = []
        for base, _ in self._groups():
            keys += [base] if self._shards == 1 else [f"{base}#{i}/{self._shards}" for i in range(self._shards)]
        return keys

    def build_part(self, step_id: str, for_part: str, resume_state: object) -> FilePartition:
        groups = self._groups()
        shard = 0
        base = for_part
        if self._shards > 1:
            base, _, frac = for_part.rpartition("#")
            shard = int(frac.split("/")[0])
        index = [b for b, _ in groups].index(base)
        earlier = [p for _, ps in groups[:index] for p in ps]
        later = [p for _, ps in groups[index + 1 :] for p in ps]
        return FilePartition(
            groups[index][1],
            resume_state,
            follow=self._follow,
            start_at=self._start_at,
            poll_interval_s=self._poll,
            read_chunk_bytes=self._chunk,
            discover_interval_s=self._discover,
            close_idle_s=self._close_idle,
            forget_after_s=self._forget,
            exclude=self._exclude,
            earlier=earlier,
            later=later,
            shard=shard,
            shards=self._shards,
            name=for_part,
            quiet=self._quiet,
        )
