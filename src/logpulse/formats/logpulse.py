"""The log line format: the one place that knows what a valid line is and how it becomes a point.

    YYYY-MM-DD HH:MM:SS[.f{1,9}] customer_id request_path status duration_seconds

Timestamps are UTC. Fields are separated by single spaces; `\\r\\n` line ends are accepted.

Parsing is the hottest loop of the processor, so a chunk of many lines is split by one compiled
regular expression into columns (`formats.columns`), and only lines the expression refuses go
through the per-line parser, whose only job is to say precisely *why* a line is refused. Both
implement the same grammar (a property test checks they agree).

Point identity: InfluxDB keys a point by (measurement, tags, time), so two requests of one customer
in the same second would overwrite each other. Each line's time gets a deterministic offset below the
timestamp's own resolution: `(byte_offset + file_key) mod 10**(9 - fraction_digits)` nanoseconds.
Distinct lines of one file never collide (their byte offsets differ by less than a second's worth of
nanoseconds for files under 1 GB), the same line read again maps to the same point (replays after a
crash, the same file ingested twice, a renamed copy), and the offset never moves a request into
another second, so every per-day and per-second figure is exact.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

import numpy as np

from logpulse.formats.bulk_times import Ints, Mask, iso_seconds, point_times
from logpulse.formats.columns import ChunkColumns, Customers, Request, rows_pattern, split_lines
from logpulse.formats.lines import RequestLines, lines_of, reject
from logpulse.model import Chunk, ParsedChunk, Reject

CUSTOMER_ID_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"
"""Customer ids: ASCII letters, digits, `_`, `.`, `-`; 1 to 64 characters (also the API's rule)."""
CUSTOMER_ID_RE = re.compile(rf"{CUSTOMER_ID_PATTERN}\Z")  # \Z: `$` would also match before a final newline

_DATE = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_HM = r"(?:[01]\d|2[0-3]):[0-5]\d"
_SECONDS = r"([0-5]\d)(?:\.(\d{1,9}))?"  # groups: seconds, fraction
_TIME = rf"({_HM}):{_SECONDS}"
_PATH = r"(\S{1,4096})"
_STATUS = r"([1-5]\d\d)"
_DURATION = r"(\d{1,9}(?:\.\d{1,9})?)"
LINE_RE = re.compile(  # groups: minute ("YYYY-MM-DD HH:MM"), seconds, fraction, customer, path, status, duration
    rf"^({_DATE} {_HM}):{_SECONDS} ({CUSTOMER_ID_PATTERN}) {_PATH} {_STATUS} {_DURATION}\r?$",
    re.MULTILINE,
)

_NS_PER_UNIT: list[int] = [10 ** (9 - digits) for digits in range(10)]  # ns per unit of a fraction with `digits` digits
_minute_cache: dict[str, int | None] = {}


def _minute_epoch(key: str) -> int | None:
    """Epoch seconds of 'YYYY-MM-DD HH:MM' (UTC), or None for an unreal date such as 02-30."""
    sec = _minute_cache.get(key)
    if sec is None and key not in _minute_cache:
        try:
            day = dt.date(int(key[0:4]), int(key[5:7]), int(key[8:10]))
        except ValueError:
            sec = None
        else:
            sec = calendar.timegm(day.timetuple()) + int(key[11:13]) * 3600 + int(key[14:16]) * 60
        if len(_minute_cache) > 200_000:  # bounded: a month of minutes is 43,200 keys
            _minute_cache.clear()
        _minute_cache[key] = sec
    return sec


def point_time(second_epoch: int, fraction: str | None, offset: int, file_key: int) -> int:
    """The unique, deterministic point time of a line (see the module docstring)."""
    unit = _NS_PER_UNIT[len(fraction) if fraction else 0]
    base = second_epoch * 1_000_000_000 + (int(fraction) * unit if fraction else 0)
    return base + (offset + file_key) % unit


def explain(line: str) -> str | None:
    """Why a single line (without its newline) is invalid, or None if it is valid."""
    line = line.removesuffix("\r")
    if not line.strip():
        return "empty line"
    parts = line.split(" ")
    if len(parts) != 6:
        return (
            f"expected 6 fields separated by single spaces (date time customer path status duration), got {len(parts)}"
        )
    date, time, customer, path, status, duration = parts
    if not re.fullmatch(_DATE, date):
        return f"invalid date {date[:40]!r}: expected YYYY-MM-DD"
    m = re.fullmatch(_TIME, time)
    if not m:
        return f"invalid time {time[:40]!r}: expected HH:MM:SS[.fraction] (00:00:00-23:59:59)"
    if _minute_epoch(f"{date} {m.group(1)}") is None:
        return f"invalid date {date!r}: no such day"
    if not CUSTOMER_ID_RE.match(customer):
        return f"invalid customer id {customer[:80]!r}: expected 1-64 of A-Z a-z 0-9 _ . -"
    if not re.fullmatch(_PATH, path):
        return f"invalid request path {path[:80]!r}: expected 1-4096 non-space characters"
    if not re.fullmatch(_STATUS, status):
        return f"invalid status {status[:20]!r}: expected an HTTP status 100-599"
    if not re.fullmatch(_DURATION, duration):
        return f"invalid duration {duration[:40]!r}: expected non-negative seconds such as 0.532"
    return None


def _slow_lines(chunk: Chunk, raw: bytes, base: int, requests: RequestLines, rejects: list[Reject]) -> int:
    """Parse `raw` (lines starting at byte `base` of the chunk) one by one; returns lines seen."""
    seen = 0
    for offset, line in lines_of(chunk, raw, base, rejects):
        seen += 1
        if line is None:
            continue
        got = _one_line(line, offset, chunk.file_key)
        if isinstance(got, str):
            reject(rejects, chunk, offset, line, got)
        else:
            requests.add(*got)
    return seen


def _one_line(line: str, offset: int, file_key: int) -> Request | str:
    """One line's request, or why it is refused."""
    m = LINE_RE.match(line)
    if m is not None:
        key, ss, frac, customer, path, status, dur = m.groups()
        minute = _minute_epoch(key)
        if minute is not None:
            return customer, point_time(minute + int(ss), frac, offset, file_key), path, status, dur
    return explain(line) or "unparseable line"


_ROWS = rows_pattern(  # groups: second ("YYYY-MM-DD HH:MM:SS"), fraction, customer, path, status, duration
    rf"({_DATE} {_HM}:[0-5]\d)(?:\.(\d{{1,9}}))? ({CUSTOMER_ID_PATTERN}) {_PATH} {_STATUS} {_DURATION}"
)


def _seconds(texts: list[str | None]) -> tuple[Ints, Mask]:
    """Epoch seconds of each line's time text (None: no text), and which are real, as a column
    (`bulk_times.iso_seconds`). The expression gives every text that function's shape; were one not
    of it, no line would count as real here, and each would take the per-line path, which is exact."""
    got = iso_seconds(texts)
    if got is None:
        return np.zeros(len(texts), dtype=np.int64), np.zeros(len(texts), dtype=np.bool_)
    return got


def parse_chunk(chunk: Chunk) -> ParsedChunk:
    """Parse a chunk of complete lines into columns of requests and rejects (with byte offsets).

    As columns (`formats.columns`) when the chunk is ASCII: one split by the line's expression, the
    times converted as a column, the customers numbered per distinct id.
    A line the expression refuses (or whose time is not real, or beyond int64 nanoseconds) takes
    `_one_line`, which says why."""
    cols = split_lines(_ROWS, chunk.data, 6)
    if cols is None:  # byte and character offsets differ, or no lines: the careful path
        return parse_chunk_by_line(chunk)
    second, fraction, customer, path, status, duration = cols.fields
    seconds, real = _seconds(second)
    fractions = None if fraction.count(None) == len(fraction) else fraction
    times, fits = point_times(seconds, fractions, cols.starts + chunk.offset, chunk.file_key)
    customers = Customers()
    codes = customers.codes_as_written(customer)
    matched = cols.matched()
    accepted = real & fits if matched is None else real & fits & matched
    columns = ChunkColumns(chunk, cols, accepted, codes, customers, times, path, status, duration)
    return columns.parsed(lambda line, offset: _one_line(line, offset, chunk.file_key))


def parse_chunk_by_line(chunk: Chunk) -> ParsedChunk:
    """The chunk parsed one line at a time: what `parse_chunk` must give for every chunk."""
    requests = RequestLines()
    rejects: list[Reject] = []
    lines = _slow_lines(chunk, chunk.data, 0, requests, rejects)
    return ParsedChunk(requests.columns(), rejects, lines)
