"""One check of a parsed request, whatever its format: what may reach InfluxDB, the scorer and the clock.

The format parsers say whether a line has the shape of their grammar; this module says whether the
values it yields are plausible and safe, and it is applied to every parser's output in one place
(`ValidatedParser`, built by `formats.registry.build_parser`), so tailing, `logpulse ingest`,
`POST /ingest` and `check-format` all apply the same rules:

- time within [1970-01-01, now + MAX_FUTURE_S]: InfluxDB stores int64 nanoseconds (1677-2262), and
  a line from the future would move the stream clock and every customer's scorer;
- status an integer 100-599 written in ASCII digits (`\\d` and `str.isdigit()` also accept `٢٠٠`
  and `2²²`);
- duration a number of seconds in ASCII digits (`float()` accepts `nan`, `inf`, `-1`, `1_0`), at
  most MAX_DURATION_S;
- customer id 1-64 of `A-Z a-z 0-9 _ . -` (a tag that line protocol cannot misread), path free of
  control characters and surrogates (a newline would end the point, a surrogate cannot be encoded).

A refused request becomes a `Reject` whose `kind` names the field and whose reason says what was
wrong, at the byte offset of its line (`POST /ingest` cuts rejected lines out by that offset). A
line on which a format's parser raises is rejected the same way, with the error as its reason.

Cost: a chunk's requests are columns across customers, so the common case is a handful of C-level
passes per column whatever the number of customers (one `min`/`max`, one set comparison, one
possessive regex over the joined customer ids and one over the joined durations, one `translate`
over the joined paths). Only a chunk that holds an invalid request is looked at line by line: it is
parsed again in halves until each invalid request is alone in its piece, which locates its line
without the parsers having to keep per-line offsets.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from logpulse.formats.lines import MAX_LINE_IN_REJECT
from logpulse.formats.logpulse import CUSTOMER_ID_PATTERN
from logpulse.formats.record import LineRecord
from logpulse.formats.spec import LineParser
from logpulse.model import Chunk, ParsedChunk, Reject, RequestColumns

log = logging.getLogger(__name__)
FIELDS = ("time", "status", "duration", "customer_id", "path")
"""The `kind` of a `Reject` refused by this check (the metric label `reason` takes these values)."""

_NS = 1_000_000_000
_STATUSES = frozenset(str(s) for s in range(100, 600))
_CUSTOMER = re.compile(CUSTOMER_ID_PATTERN, re.ASCII)
_CUSTOMERS = re.compile(rf"(?:{CUSTOMER_ID_PATTERN}\n)*+", re.ASCII)
"""Newline-terminated customer ids, each valid (a chunk's distinct customers at once)."""
_DURATION = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,30})?", re.ASCII)
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_BAD_PATH_CHAR = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
"""ASCII control characters (a newline would end the point) and lone surrogates (from JSON `\\ud800`
escapes: they cannot be encoded as UTF-8)."""
_SMALL_PIECE = 16
"""A piece of at most this many lines is parsed line by line instead of being halved again."""


def _iso(ns: int) -> str:
    """A time for a reject reason; years outside 1-9999 are shown as nanoseconds."""
    try:
        return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    except OverflowError:
        return f"{ns} ns since 1970"


@dataclass(frozen=True)
class RequestCheck:
    """The rules above with their two settings; `now_ns` is the wall clock (replaceable in tests)."""

    max_future_s: float = 300.0
    max_duration_s: float = 86400.0
    now_ns: Callable[[], int] = time.time_ns
    _short_durations: re.Pattern[str] = field(init=False, repr=False, compare=False)
    """Newline-terminated durations with fewer integer digits than the bound has (so below it)."""

    def __post_init__(self) -> None:
        digits = int(math.log10(self.max_duration_s)) if self.max_duration_s >= 1 else 0
        short = rf"(?:[0-9]{{1,{digits}}}+(?:\.[0-9]{{1,30}}+)?+\n)*+" if digits else r"(?!)"
        object.__setattr__(self, "_short_durations", re.compile(short, re.ASCII))

    def latest_ns(self) -> int:
        """The latest request time accepted now."""
        return self.now_ns() + int(self.max_future_s * _NS)

    # -- a chunk's requests, as columns ---------------------------------------------------------
    def columns_ok(self, r: RequestColumns, latest_ns: int) -> bool:
        """True when every request passes (the fast path: whole columns at once, all customers
        together, so the cost does not grow with the number of customers)."""
        if not r.times:
            return True
        if min(r.times) < 0 or max(r.times) > latest_ns:
            return False
        if not _STATUSES.issuperset(r.statuses):
            return False
        customers = "\n".join(r.customers) + "\n"
        if customers.count("\n") != len(r.customers) or _CUSTOMERS.fullmatch(customers) is None:
            return False
        joined = "".join(r.paths)
        if joined.isascii():
            if joined.encode("ascii").translate(None, _PRINTABLE_ASCII):
                return False
        elif _BAD_PATH_CHAR.search(joined):
            return False
        durations = "\n".join(r.durations) + "\n"
        if durations.count("\n") != len(r.durations) or self._short_durations.fullmatch(durations) is None:
            return all(self.duration_problem(d) is None for d in r.durations)
        return True

    # -- one request: the reason ---------------------------------------------------------------------
    def duration_problem(self, text: str) -> str | None:
        if _DURATION.fullmatch(text) is None:
            return f"invalid duration {text[:40]!r}: expected seconds in ASCII digits such as 0.532"
        if float(text) > self.max_duration_s:
            return f"invalid duration {text[:40]} s: above MAX_DURATION_S={self.max_duration_s:g}"
        return None

    def problem(
        self, customer: str, t: int, path: str, status: str, duration: str, latest_ns: int
    ) -> tuple[str, str] | None:
        """(field, reason) of the first rule a request breaks, or None when it passes."""
        if t < 0:
            return "time", f"invalid time {_iso(t)}: before 1970-01-01"
        if t > latest_ns:
            return "time", (
                f"invalid time {_iso(t)}: more than MAX_FUTURE_S={self.max_future_s:g} s after "
                f"the clock of this host ({_iso(latest_ns - int(self.max_future_s * _NS))})"
            )
        if status not in _STATUSES:
            return "status", f"invalid status {status[:20]!r}: expected an HTTP status 100-599 in ASCII digits"
        why = self.duration_problem(duration)
        if why is not None:
            return "duration", why
        if _CUSTOMER.fullmatch(customer) is None:
            return "customer_id", f"invalid customer id {customer[:80]!r}: expected 1-64 of A-Z a-z 0-9 _ . -"
        bad = _BAD_PATH_CHAR.search(path)
        if bad is not None:
            return "path", f"invalid path {path[:80]!r}: control character U+{ord(bad.group(0)):04X}"
        return None

    def first_problem(self, r: RequestColumns, latest_ns: int) -> tuple[str, str] | None:
        customers = map(r.customers.__getitem__, r.codes.tolist())
        for c, t, p, s, d in zip(customers, r.times, r.paths, r.statuses, r.durations, strict=True):
            found = self.problem(c, t, p, s, d, latest_ns)
            if found is not None:
                return found
        return None


def _line_starts(data: bytes) -> list[int]:
    """Offsets in `data` at which its lines start."""
    starts = [0]
    pos = data.find(b"\n")
    while 0 <= pos < len(data) - 1:
        starts.append(pos + 1)
        pos = data.find(b"\n", pos + 1)
    return starts


@dataclass
class ValidatedParser:
    """A format's parser whose accepted requests all passed `RequestCheck` (the others are rejects)."""

    inner: LineParser
    check: RequestCheck

    def parse_chunk(self, chunk: Chunk) -> ParsedChunk:
        parsed = self._try_parse(chunk)
        latest = self.check.latest_ns()
        if isinstance(parsed, ParsedChunk) and self.check.columns_ok(parsed.requests, latest):
            return parsed
        parts: list[RequestColumns] = []
        out = ParsedChunk(RequestColumns(), [], 0)
        self._collect(chunk, parsed, latest, out, parts)
        out.requests = RequestColumns.concat(parts) if parts else RequestColumns()
        return out

    def _try_parse(self, chunk: Chunk) -> ParsedChunk | Exception:
        """The format's parse, or the exception it raised: a parser's bug on one line must cost that
        line (a reject naming the error), not the processor."""
        try:
            return self.inner.parse_chunk(chunk)
        except Exception as exc:
            log.debug("the %s parser failed on %s at %d: %r", type(self.inner).__name__, chunk.path, chunk.offset, exc)
            return exc

    def _collect(
        self, chunk: Chunk, parsed: ParsedChunk | Exception, latest: int, out: ParsedChunk, parts: list[RequestColumns]
    ) -> None:
        """Add `parsed` (the parse of `chunk`) to `out` (its requests to `parts`), minus its invalid
        requests, which become rejects."""
        if isinstance(parsed, ParsedChunk) and self.check.columns_ok(parsed.requests, latest):
            out.lines += parsed.lines
            out.rejects.extend(parsed.rejects)
            if parsed.requests.times:
                parts.append(parsed.requests)
            return
        starts = _line_starts(chunk.data)
        if len(starts) == 1:  # one line: the invalid request (or the parser's error) is this line's
            if isinstance(parsed, Exception):
                found = ("format", f"the parser failed on this line: {type(parsed).__name__}: {parsed}"[:300])
                out.lines += 1
            else:
                found = self.check.first_problem(parsed.requests, latest) or ("format", "invalid request")
                out.lines += parsed.lines
                out.rejects.extend(parsed.rejects)
            text = chunk.data[: MAX_LINE_IN_REJECT * 4].decode("utf-8", "replace").rstrip("\r\n")
            out.rejects.append(Reject(chunk.path, chunk.offset, text[:MAX_LINE_IN_REJECT], found[1], found[0]))
            return
        cuts = starts if len(starts) <= _SMALL_PIECE else [0, starts[len(starts) // 2]]
        for i, start in enumerate(cuts):
            end = cuts[i + 1] if i + 1 < len(cuts) else len(chunk.data)
            piece = Chunk(chunk.path, chunk.file_key, chunk.offset + start, chunk.data[start:end])
            self._collect(piece, self._try_parse(piece), latest, out, parts)

    def parse_line(self, line: str) -> LineRecord:
        """The format's view of one line; refused with this check's reason when its request is invalid."""
        record = self.inner.parse_line(line)
        if record.stored is None:
            return record
        line = line.removesuffix("\n")
        parsed = self.parse_chunk(Chunk("<line>", 0, 0, line.encode("utf-8", "surrogateescape") + b"\n"))
        if parsed.rejects:
            return LineRecord(record.fields, None, parsed.rejects[-1].reason)
        return record
