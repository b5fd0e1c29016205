"""Identity by content: what a file *is* does not depend on its path or inode.

A file's identity is a checksum of its first line (blake2b, 63 bits), the same value that the points
read from it carry as `Chunk.file_key`. A renamed, copied or compressed copy of a file therefore has the
identity of the original, so its checkpoint is found again and its lines map to the same points. A
file gets an identity only once its first line is complete (a tailed file that has no newline yet
waits); a file read to its end (`ingest`) uses its whole content when it has no newline at all.

Compressed files are recognised by their magic bytes, never by their names: gzip, bzip2 and xz are
read through the standard library's decompressors (offsets are offsets in the decompressed stream,
so a `.1.gz` has the identity and the offsets of the plain file it was made from); zstd is detected
but cannot be read without a dependency, so such files are skipped with a warning.

Before a reader resumes at an offset it verifies it: the byte before it must be a newline and a
CRC of the bytes just before it must equal the one recorded with the checkpoint (`tail_crc`), so a
file truncated and rewritten with the same first line is not resumed in the middle of a line.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import zlib
from typing import BinaryIO

MAX_FIRST_LINE = 1 << 20
"""A first line longer than this gets no identity (such a file is not a log of ours)."""
TAIL_BYTES = 64
"""How many bytes before a checkpoint's offset its CRC covers."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
READABLE_COMPRESSIONS = frozenset({"gzip", "bzip2", "xz"})


def file_fingerprint(first_line: bytes) -> int:
    """A file's identity: blake2b of its first line (newline included), as a non-negative int63."""
    return int.from_bytes(hashlib.blake2b(first_line, digest_size=8).digest(), "big") >> 1


def compression_of(head: bytes) -> str | None:
    """The compression format announced by a file's first bytes, or None for plain text."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def tail_crc(tail: bytes) -> int:
    """The CRC stored with a checkpoint: of the (up to TAIL_BYTES) bytes just before its offset."""
    return zlib.crc32(tail)


def first_line_of(head: bytes, *, final: bool) -> bytes | None:
    """The complete first line in `head`; with `final` (nothing more will come) a line without its
    newline counts too. None while there is no identity yet."""
    cut = head.find(b"\n")
    if cut >= 0:
        return head[: cut + 1]
    return head if final and head else None


def open_decompressed(fd: int, kind: str) -> BinaryIO:
    """A decompressing reader over a file descriptor (which it takes over and closes)."""
    raw = os.fdopen(fd, "rb")
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    raw.close()
    raise ValueError(f"cannot decompress {kind}")


def _plain_head(fd: int, head: bytes) -> bytes:
    if b"\n" not in head and len(head) == 4096:
        head = os.pread(fd, MAX_FIRST_LINE, 0)
    return head


class Identity:
    """What `identify` found: the fingerprint (None: no complete first line yet), the compression,
    and the length of the first line (to re-check the identity of an open file cheaply)."""

    __slots__ = ("compression", "fingerprint", "head_len")

    def __init__(self, fingerprint: int | None, compression: str | None, head_len: int) -> None:
        self.fingerprint = fingerprint
        self.compression = compression
        self.head_len = head_len


def identify_fd(fd: int, *, final: bool) -> Identity:
    """The identity of an open plain or compressed file (the descriptor stays open, its position
    is not used)."""
    head = os.pread(fd, 4096, 0)
    kind = compression_of(head)
    if kind is None:
        first = first_line_of(_plain_head(fd, head), final=final)
        return Identity(None if first is None else file_fingerprint(first), None, len(first or b""))
    if kind not in READABLE_COMPRESSIONS:
        return Identity(None, kind, 0)
    dup = os.dup(fd)
    try:
        with open_decompressed(dup, kind) as stream:
            head = stream.read(4096)
            if b"\n" not in head and len(head) == 4096:
                head += stream.read(MAX_FIRST_LINE)
    except (OSError, EOFError, lzma.LZMAError, ValueError):
        return Identity(None, kind, 0)  # a compressed file still being written, or damaged
    first = first_line_of(head, final=True)  # a compressed file is complete
    return Identity(None if first is None else file_fingerprint(first), kind, len(first or b""))


def identify(path: str, *, final: bool) -> Identity | None:
    """The identity of the file at `path`, or None if it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return identify_fd(fd, final=final)
    finally:
        os.close(fd)
