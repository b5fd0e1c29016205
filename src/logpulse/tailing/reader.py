"""Reader: one file, open at an offset, read in chunks of complete lines.

A plain file is read with `pread` on its descriptor, so a file renamed or deleted while open is still
read to its end (the descriptor keeps the inode). A compressed file is read through a decompressing
stream (offsets count decompressed bytes); it is complete by definition, so its last line is emitted
even without a newline. Opening verifies the identity (first line) and the offset (see
`fingerprint`); a reader never holds more than one descriptor.
"""

from __future__ import annotations

import logging
import lzma
import os
import threading
import time
import zlib
from typing import BinaryIO

from logpulse import metrics
from logpulse.model import Chunk
from logpulse.tailing.checkpoint import Checkpoint
from logpulse.tailing.fingerprint import TAIL_BYTES, identify_fd, open_decompressed, tail_crc

log = logging.getLogger(__name__)


class OpenFiles:
    """The process-wide budget of descriptors held by readers (`MAX_OPEN_FILES`), shared by the
    partitions (worker threads) of a process; `logpulse_open_files` shows its use."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self._held >= self.limit:
                return False
            self._held += 1
            metrics.OPEN_FILES.set(self._held)
            return True

    def release(self) -> None:
        with self._lock:
            self._held -= 1
            metrics.OPEN_FILES.set(self._held)

    @property
    def held(self) -> int:
        return self._held


BUDGET = OpenFiles(128)


def line_start_before(fd: int, size: int) -> int:
    """The offset just after the last newline at or before `size` (where START_AT=end begins)."""
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        cut = os.pread(fd, pos - start, start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


class FileReader:
    """A file being read: its identity, descriptor or stream, and the offset of its next line."""

    def __init__(self, path: str, fd: int, fingerprint: int, head_len: int, compression: str | None) -> None:
        st = os.fstat(fd)
        self.path = path
        self.fingerprint = fingerprint
        self.head_len = head_len
        self.compression = compression
        self.dev, self.ino = st.st_dev, st.st_ino
        self.offset = 0
        self.tail = b""
        self.final = compression is not None  # no more data will come: emit a last partial line
        self.at_eof = False
        self.moved = False  # already logged that its path now names another file
        self.broken = False  # a compressed stream that ended early (still being written?)
        self.last_data = time.monotonic()
        self._fd = fd
        if compression:
            os.lseek(fd, 0, os.SEEK_SET)  # identify_fd read through a duplicate sharing the position
        self._stream: BinaryIO | None = open_decompressed(fd, compression) if compression else None
        self._carry = b""

    @classmethod
    def open(
        cls, path: str, fingerprint: int, offset: int, crc: int | None, *, final: bool
    ) -> tuple[FileReader | None, str]:
        """Open `path` as the file `fingerprint`, positioned at `offset` if it verifies (else at 0).
        Returns (None, why) if the file is not that file (any more) or cannot be opened."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            return None, str(exc)
        ident = identify_fd(fd, final=final)
        if ident.fingerprint != fingerprint:
            os.close(fd)
            return None, "its content changed"
        reader = cls(path, fd, fingerprint, ident.head_len, ident.compression)
        if offset > 0:
            n = min(TAIL_BYTES, offset)
            tail = reader._read_at(offset - n, n)
            if len(tail) == n and tail.endswith(b"\n") and (crc is None or tail_crc(tail) == crc):
                reader.offset, reader.tail = offset, tail
            else:
                log.warning(
                    "%s changed before offset %d since it was read (truncated and rewritten?); "
                    "reading it again from its start",
                    path,
                    offset,
                )
                reader._seek(0)
        return reader, ""

    def _read_at(self, pos: int, n: int) -> bytes:
        if self._stream is None:
            return os.pread(self._fd, n, pos)
        self._stream.seek(pos)
        return self._stream.read(n)

    def _seek(self, pos: int) -> None:
        if self._stream is not None:
            self._stream.seek(pos)
            self._carry = b""
        self.offset, self.tail = pos, b""

    @property
    def compressed(self) -> bool:
        return self._stream is not None

    def size(self) -> int:
        """Current size of a plain file (-1 for a compressed one)."""
        return -1 if self._stream is not None else os.fstat(self._fd).st_size

    def links(self) -> int:
        return os.fstat(self._fd).st_nlink

    def same_head(self) -> bool:
        """Is the first line still the one that gave the identity (no truncate-and-rewrite)?"""
        if self._stream is not None:
            return True
        from logpulse.tailing.fingerprint import file_fingerprint

        head = os.pread(self._fd, self.head_len, 0)
        return len(head) < self.head_len or file_fingerprint(head) == self.fingerprint

    def read(self, max_bytes: int, *, final: bool) -> Chunk | None:
        """The next chunk of complete lines (a last partial one too if `final` or compressed)."""
        final = final or self.final
        data = self._read_plain(max_bytes, final) if self._stream is None else self._read_stream(max_bytes)
        if not data:
            self.at_eof = True
            return None
        chunk = Chunk(self.path, self.fingerprint, self.offset, data)
        self.offset += len(data)
        self.tail = data[-TAIL_BYTES:] if len(data) >= TAIL_BYTES else (self.tail + data)[-TAIL_BYTES:]
        self.at_eof = False
        self.last_data = time.monotonic()
        return chunk

    def _read_plain(self, max_bytes: int, final: bool) -> bytes:
        size = max_bytes
        while True:
            data = os.pread(self._fd, size, self.offset)
            if not data:
                return b""
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) == size:  # one line longer than a chunk: read more
                size *= 2
                continue
            break
        if cut == 0 or (final and cut < len(data) and len(data) < size):
            return data if final else b""  # a partial line waits for its newline
        return data[:cut]

    def _read_stream(self, max_bytes: int) -> bytes:
        assert self._stream is not None
        buf = self._carry
        while True:
            try:
                more = self._stream.read(max_bytes)
            except (EOFError, OSError, ValueError, lzma.LZMAError, zlib.error) as exc:
                # still being written by the compressor, or damaged: what was read so far stands
                log.debug("%s: compressed stream ends early: %s", self.path, exc)
                self.broken = True
                self._carry = b""
                return b""
            buf += more
            cut = buf.rfind(b"\n") + 1
            if len(more) < max_bytes:  # end of the stream: everything goes
                cut = len(buf)
                break
            if cut:
                break
        self._carry = buf[cut:]
        return buf[:cut]

    def skip_to_end(self, size: int) -> None:
        """START_AT=end: move to the end of the last complete line (of `size` bytes, or of the
        decompressed stream)."""
        if self._stream is not None:
            while self.read(1 << 20, final=True) is not None:
                pass
            return
        self.offset = line_start_before(self._fd, size)
        n = min(TAIL_BYTES, self.offset)
        self.tail = os.pread(self._fd, n, self.offset - n)

    def checkpoint(self, now: float) -> Checkpoint:
        return Checkpoint(self.fingerprint, self.offset, tail_crc(self.tail) if self.offset else None, self.path, now)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()  # closes the descriptor it took over
        else:
            os.close(self._fd)
