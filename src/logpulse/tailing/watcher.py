"""Watcher: one partition's files — discovered, identified, read fairly, and let go.

Every `discover_interval_s` the watcher re-expands its patterns (`discovery.PathsProvider`), stats
each file and identifies new or changed ones by content (`fingerprint`), keeping those whose
fingerprint falls in its shard. A file with lines beyond its checkpoint (or a new one) becomes a
*target*; targets are opened while the process's descriptor budget allows (resumed files before new
ones, so a rotated file is finished before its successor), and open readers are served round-robin,
one chunk per call, so one busy file cannot starve the others.

What happens to a file being read:
- renamed (rename rotation): the descriptor follows the inode; it is read to its end, and the file
  now at the old path is a new identity, read from its start;
- copied then truncated (copytruncate): the truncation is seen as size < offset (or a changed first
  line); the copy has the same fingerprint, so its unread tail is read from the checkpoint's offset,
  and the truncated file gets a new identity once its first line is complete, read from 0;
- compressed after rotation: a compressed file with a known fingerprint is continued at its offset
  in the decompressed stream (usually there is nothing left, and it is skipped); one never read
  before is read decompressed from its start;
- deleted: read to its end from the open descriptor (a last partial line included), then closed;
- rotated away before it was ever seen (the processor was blocked while InfluxDB was away, or a
  file was created and rotated within one discovery interval): a sibling with an unknown fingerprint
  modified after the first discovery is read from its start; one older than that is history and is
  left alone (a literal `LOG_PATH` means that file, not its archives);
- idle for `close_idle_s` (or its descriptor is needed for another file): closed; it is opened again,
  by identity and verified offset, when discovery sees it grow.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from logpulse import metrics
from logpulse.model import Chunk
from logpulse.tailing.checkpoint import Checkpoints, ResumeState
from logpulse.tailing.discovery import PathsProvider, is_glob
from logpulse.tailing.fingerprint import READABLE_COMPRESSIONS, identify
from logpulse.tailing.reader import BUDGET, FileReader, OpenFiles

log = logging.getLogger(__name__)
BATCH_CHUNKS = 8
"""A source batch holds chunks of several files, up to this many chunks' worth of bytes (fewer, larger
batches cost less per line in the engine, as one partition per file did before)."""


@dataclass(slots=True)
class _Seen:
    """A path as discovery last saw it (so unchanged files are not identified again)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    fingerprint: int | None
    compression: str | None
    sibling: bool
    exhausted: bool = False  # a compressed file read to its end: nothing more will come


@dataclass(frozen=True, slots=True)
class _Target:
    """A file with lines to read and no reader yet."""

    path: str
    fingerprint: int
    offset: int
    crc: int | None
    new: bool


@dataclass(frozen=True, slots=True)
class WatchOptions:
    follow: bool
    start_at: str = "beginning"
    read_chunk_bytes: int = 1 << 20
    discover_interval_s: float = 1.0
    close_idle_s: float = 10.0
    forget_after_s: float = 86400.0


class Watcher:
    """The files of one partition (a group of patterns, one shard of it)."""

    def __init__(
        self,
        provider: PathsProvider,
        state: ResumeState | None,
        options: WatchOptions,
        *,
        shard: int = 0,
        shards: int = 1,
        name: str = "",
        budget: OpenFiles = BUDGET,
    ) -> None:
        self._provider = provider
        self._opt = options
        self._shard, self._shards = shard, shards
        self._name = name or ",".join(provider.patterns)
        self._budget = budget
        self._ckpt = Checkpoints.from_state(state)
        self._seen: dict[str, _Seen] = {}
        self._targets: dict[int, _Target] = {}
        self._readers: OrderedDict[int, FileReader] = OrderedDict()
        self._next_discovery = 0.0
        self.busy = False  # after a poll that returned []: poll again at once rather than sleep
        self._discovered_once = False
        self._warned: set[str] = set()
        self._tracked = 0
        self._backlog = metrics.BACKLOG_BYTES.labels(self._name)
        self._literals = [p for p in provider.patterns if not is_glob(p)]

    # -- the partition's calls -----------------------------------------------------------------
    def poll(self) -> list[Chunk] | None:
        """The next chunk(s); [] when there is nothing to read now; None when done (not following)."""
        now = time.monotonic()
        due = now >= self._next_discovery or (self._opt.follow and self._literal_changed())
        if due and (self._opt.follow or not self._discovered_once):
            self._discover()
            self._next_discovery = now + self._opt.discover_interval_s
        self._open_targets()
        final = not self._opt.follow
        out: list[Chunk] = []
        size = 0
        for fp in list(self._readers):  # one chunk per file with data, round-robin, up to a batch's worth
            reader = self._readers[fp]
            chunk = reader.read(self._opt.read_chunk_bytes, final=final)
            if chunk is not None:
                self._readers.move_to_end(fp)
                out.append(chunk)
                size += len(chunk.data)
                if size >= BATCH_CHUNKS * self._opt.read_chunk_bytes:
                    break
                continue
            if final or (reader.compressed and not reader.broken):
                self._finish(fp)  # read to its end, nothing more will come: free the descriptor now
        if out:
            return out
        last = self._at_end(time.monotonic())
        if last:
            return last
        if self._targets and self._open_targets():
            self.busy = True  # files were just opened: read them without sleeping
            return []
        if not self._opt.follow and not self._readers and not self._targets:
            return None
        self.busy = False
        return []

    def state(self) -> ResumeState:
        now = time.time()
        return self._ckpt.state(r.checkpoint(now) for r in self._readers.values())

    def close(self) -> None:
        for fp in list(self._readers):
            self._release(fp)
        metrics.TRACKED_FILES.dec(self._tracked)
        self._tracked = 0

    # -- discovery ---------------------------------------------------------------------------
    def _literal_changed(self) -> bool:
        """A cheap check at every poll: has a literal path appeared, been replaced or shrunk? (Globs
        wait for the next discovery.)"""
        for path in self._literals:
            prev = self._seen.get(path)
            try:
                st = os.stat(path)
            except OSError:
                if prev is not None:
                    return True
                continue
            if prev is None or (prev.dev, prev.ino) != (st.st_dev, st.st_ino) or st.st_size < prev.size:
                return True
            if prev.fingerprint is None and st.st_size != prev.size:
                return True
        return False

    def _discover(self) -> None:
        wall = time.time()
        paths = self._provider.paths(announce=self._shard == 0 and self._opt.follow)
        candidates = [(p, False) for p in paths]
        if self._opt.follow:
            known = (
                paths + [c.path for c in self._ckpt.by_fingerprint.values()] + [r.path for r in self._readers.values()]
            )
            candidates += [(p, True) for p in self._provider.siblings(known, exclude=set(paths))]
        self._targets.clear()
        seen: dict[str, _Seen] = {}
        alive: set[int] = set()
        for path, sibling in candidates:
            entry = self._look(path, sibling)
            if entry is None:
                continue
            seen[path] = entry
            fp = entry.fingerprint
            if fp is None or fp % self._shards != self._shard:
                continue
            alive.add(fp)
            self._consider(path, entry)
        self._seen = seen
        self._follow_moves()
        self._update_backlog()
        self._ckpt.touch(alive, wall)
        self._ckpt.forget(wall - self._opt.forget_after_s, keep=set(self._readers) | alive)
        if not self._ckpt.started:
            self._ckpt.started, self._ckpt.started_at = True, wall
        self._discovered_once = True
        tracked = len(self._ckpt.by_fingerprint)
        metrics.TRACKED_FILES.inc(tracked - self._tracked)
        self._tracked = tracked

    def _look(self, path: str, sibling: bool) -> _Seen | None:
        """Stat `path`; identify it again only if it is new, another inode, shrank or was rewritten."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        prev = self._seen.get(path)
        if (
            prev is not None
            and prev.fingerprint is not None
            and (prev.dev, prev.ino) == (st.st_dev, st.st_ino)
            and (st.st_size > prev.size or (st.st_size == prev.size and st.st_mtime_ns == prev.mtime_ns))
            and not (prev.compression and st.st_size != prev.size)
        ):
            prev.size, prev.mtime_ns, prev.sibling = st.st_size, st.st_mtime_ns, sibling
            return prev
        ident = identify(path, final=not self._opt.follow)
        if ident is None:
            return None
        if ident.compression and ident.compression not in READABLE_COMPRESSIONS and path not in self._warned:
            self._warned.add(path)
            log.warning("%s is %s-compressed, which logpulse cannot read; it is skipped", path, ident.compression)
        return _Seen(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, ident.fingerprint, ident.compression, sibling)

    def _consider(self, path: str, entry: _Seen) -> None:
        """Make `path` a target if it has lines for us (decided by its checkpoint)."""
        fp = entry.fingerprint
        assert fp is not None
        if fp in self._readers or fp in self._targets or entry.exhausted:
            return  # being read (a copy elsewhere waits), or already chosen this round
        ck = self._ckpt.get(fp)
        if ck is None:
            if entry.sibling and not (self._ckpt.started and entry.mtime_ns / 1e9 > self._ckpt.started_at):
                return  # a rotated sibling from before we started: history, not ours to read
            if not self._ckpt.started and self._opt.start_at == "end":
                self._skip_history(path, fp, entry)
                return
            self._targets[fp] = _Target(path, fp, 0, None, new=True)
        elif entry.compression is not None or entry.size > ck.offset:
            self._targets[fp] = _Target(path, fp, ck.offset, ck.tail_crc, new=False)

    def _skip_history(self, path: str, fp: int, entry: _Seen) -> None:
        """START_AT=end for a file present at first start: a checkpoint at its last complete line."""
        reader, _ = FileReader.open(path, fp, 0, None, final=True)
        if reader is None:
            return
        try:
            reader.skip_to_end(entry.size)
        except BaseException:
            reader.close()
            raise
        entry.exhausted = reader.compressed and not reader.broken
        if not reader.compressed and self._budget.acquire():
            self._readers[fp] = reader  # stays open: what is appended next is read at once
            return
        self._ckpt.put(reader.checkpoint(time.time()))
        reader.close()

    def _update_backlog(self) -> None:
        """`logpulse_backlog_bytes`: unread bytes of open plain files and of files waiting to be opened."""
        backlog = sum(max(0, r.size() - r.offset) for r in self._readers.values() if not r.compressed)
        for t in self._targets.values():
            entry = self._seen.get(t.path)
            if entry is not None and entry.compression is None:
                backlog += max(0, entry.size - t.offset)
        self._backlog.set(backlog)

    def _follow_moves(self) -> None:
        """Log rename rotations of open files (their descriptors keep reading the renamed inode)."""
        by_inode = {(s.dev, s.ino): p for p, s in self._seen.items()}
        for r in list(self._readers.values()):
            if r.compressed:
                continue
            now_at = by_inode.get((r.dev, r.ino))
            if now_at == r.path:
                if not r.same_head():
                    log.warning("%s was truncated and rewritten; reading it again from its start", r.path)
                    self._release(r.fingerprint)
                    self._seen.pop(r.path, None)
                continue
            if r.moved:
                if now_at is not None:
                    r.path = now_at
                continue
            r.moved = True
            if now_at is not None:
                log.info("%s was rotated (renamed to %s); reading it to its end", r.path, now_at)
                r.path = now_at
            else:
                log.info("%s was rotated (renamed away or deleted); reading it to its end", r.path)

    # -- opening and closing -----------------------------------------------------------------
    def _open_targets(self) -> bool:
        """Open waiting targets (resumed files first) while descriptors are free; True if any."""
        opened = False
        for t in sorted(self._targets.values(), key=lambda t: t.new):
            if t.fingerprint in self._readers:
                del self._targets[t.fingerprint]
                continue
            if not self._budget.acquire() and not (self._close_an_idle_reader() and self._budget.acquire()):
                break
            reader, why = FileReader.open(t.path, t.fingerprint, t.offset, t.crc, final=not self._opt.follow)
            del self._targets[t.fingerprint]
            if reader is None:
                self._budget.release()
                self._seen.pop(t.path, None)  # identify it again at the next discovery
                log.debug("%s not opened: %s", t.path, why)
                continue
            if not t.new and reader.offset:
                log.info("%s: continuing at offset %d", t.path, reader.offset)
            self._readers[t.fingerprint] = reader
            opened = True
        return opened

    def _finish(self, fp: int) -> None:
        """A file read to its end for good (ingest, or a compressed file): closed, and a compressed
        one marked so that discovery does not open it again."""
        reader = self._readers[fp]
        entry = self._seen.get(reader.path)
        if entry is not None and reader.compressed and not reader.broken:
            entry.exhausted = True
        self._release(fp)

    def _close_an_idle_reader(self) -> bool:
        """Free a descriptor for a waiting file: close the reader at its end longest ago."""
        idle = [r for r in self._readers.values() if r.at_eof]
        if not idle:
            return False
        self._release(min(idle, key=lambda r: r.last_data).fingerprint)
        return True

    def _release(self, fp: int) -> None:
        reader = self._readers.pop(fp)
        self._ckpt.put(reader.checkpoint(time.time()))
        reader.close()
        self._budget.release()

    def _at_end(self, now: float) -> list[Chunk]:
        """Every open reader is at its end: finish deleted, truncated, compressed and idle files."""
        backlog = 0
        out: list[Chunk] = []
        for fp, r in list(self._readers.items()):
            if r.compressed or not self._opt.follow:
                self._finish(fp)
                continue
            size = r.size()
            if size < r.offset:
                log.warning(
                    "%s was truncated (copytruncate?) at offset %d; its copy, if any, is read on", r.path, r.offset
                )
                self._release(fp)
                self._seen.pop(r.path, None)
            elif r.links() == 0:
                if r.final:
                    log.info("%s was deleted; read to its end and closed", r.path)
                    self._release(fp)
                else:
                    r.final = True  # nothing more will come: a last partial line is a line
                    chunk = r.read(self._opt.read_chunk_bytes, final=True)
                    if chunk is not None:
                        out.append(chunk)
            elif now - r.last_data > self._opt.close_idle_s:
                self._release(fp)
            else:
                backlog += max(0, size - r.offset)
        self._backlog.set(backlog)
        return out
