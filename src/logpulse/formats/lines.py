"""What every parser does around its own grammar: split a chunk into lines with their byte offsets
(a line that is not UTF-8 is rejected there, with its location), keep a bounded copy of a refused
line, and collect accepted requests one line at a time (`RequestLines`).

The fast paths (one regular expression over a whole ASCII chunk) stay inline in each format for
speed; these helpers serve the per-line paths.
"""

from __future__ import annotations

from collections.abc import Iterator

from logpulse.model import Chunk, Reject, RequestColumns

MAX_LINE_IN_REJECT = 4096
"""Characters of a refused line kept in its dead-letter record."""


def reject(rejects: list[Reject], chunk: Chunk, offset: int, line: str, reason: str) -> None:
    rejects.append(Reject(chunk.path, offset, line[:MAX_LINE_IN_REJECT], reason))


def lines_of(chunk: Chunk, raw: bytes, base: int, rejects: list[Reject]) -> Iterator[tuple[int, str | None]]:
    """(byte offset in the file, text) of each line of `raw`, which starts at byte `base` of the chunk.

    A line that is not valid UTF-8 is rejected here and yielded as None, so callers still count it."""
    pos = 0
    for piece in raw.split(b"\n"):
        start = pos
        pos += len(piece) + 1
        if start >= len(raw):  # the empty tail after a final newline
            break
        offset = chunk.offset + base + start
        line, reason = decode_line(piece)
        if reason is not None:
            reject(rejects, chunk, offset, line, reason)
            yield offset, None
        else:
            yield offset, line


def decode_line(raw: bytes) -> tuple[str, str | None]:
    """(text, None) for a UTF-8 line; (its text with replacement characters, the reject reason) for
    one that is not: ingest dead-letters it and `check-format` shows it refused, with that reason."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = raw[:MAX_LINE_IN_REJECT].decode("utf-8", "replace")
        return text, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"


class RequestLines:
    """Accepted requests appended one line at a time (the per-line paths), then taken as columns."""

    __slots__ = ("customers", "durations", "paths", "statuses", "times")

    def __init__(self) -> None:
        self.customers: list[str] = []
        self.times: list[int] = []
        self.paths: list[str] = []
        self.statuses: list[str] = []
        self.durations: list[str] = []

    def add(self, customer: str, t: int, path: str, status: str, duration: str) -> None:
        self.customers.append(customer)
        self.times.append(t)
        self.paths.append(path)
        self.statuses.append(status)
        self.durations.append(duration)

    def columns(self) -> RequestColumns:
        return RequestColumns.of_lines(self.customers, self.times, self.paths, self.statuses, self.durations)
