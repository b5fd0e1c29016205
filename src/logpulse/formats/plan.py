"""A line format compiled from a server's own format string (nginx `log_format`, Apache `LogFormat`).

The format string is split into literal text and fields; each field has a regular expression (a
specific one for the fields whose shape is known, such as a time or a status, else "anything up to
the next literal character"). From that list, `RegexPlan` compiles once:

- the *fast* expression: one regex for the whole line in which only the five fields logpulse stores
  (time, customer, path, status, duration) capture; a chunk of lines is split by it into columns
  (`formats.columns`), converted per distinct value (customers, statuses, paths) or as a whole
  column (`$time_local` / `%t` times, `formats.bulk_times`), so no Python step runs per line;
- the *general* expression: the same five captures with every field's general pattern, for the
  lines the fast one refuses (escaped or unusual request lines) and for single lines;
- the *full* expression: every field captured by name, for `logpulse check-format`;
- prefixes of the format, tried only for a line that did not match, to say where and why.

Point identity and the parsed requests follow the contract of `logpulse.formats.logpulse` (see `point_time`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logpulse.formats.bulk_times import SAFE_SECONDS, Ints, Mask, point_times
from logpulse.formats.columns import (
    ChunkColumns,
    Customers,
    Request,
    among,
    converted,
    present,
    rows_pattern,
    split_lines,
    spread,
)
from logpulse.formats.fields import CustomerRule, FieldError, SecondAndFraction
from logpulse.formats.lines import RequestLines, lines_of, reject
from logpulse.formats.logpulse import point_time
from logpulse.formats.record import LineRecord
from logpulse.formats.spec import FormatError
from logpulse.model import Chunk, ParsedChunk, Reject


@dataclass(frozen=True)
class Shape:
    """What a field's value can hold, so that a field ends where its value must end, not at the next
    literal's first character (an IPv6 address holds the `:` before a port; a path ends at `?`).

    `holds` and `starts` are regex character classes of the characters inside the value and of its
    first one: two fields with nothing between them are refused when the first can hold what the
    second starts with. `holds=None` is free text (anything up to the next literal); `holds=""` is a
    fixed shape that ends by itself (a time, a 3-digit status)."""

    pattern: str
    describe: str = ""
    holds: str | None = None
    starts: str | None = None


_PATH_CHAR = r'(?:[^?\s"\\]|\\.)'  # a path character, or a backslash escape (`\xc3`, `\"`)
_QUERY_CHAR = r'(?:[^\s"\\]|\\.)'
NUMBER = Shape(r"\d+", "a number", r"\d", r"\d")
STATUS = Shape(r"\d{3}", "a 3-digit status", "", r"\d")
ADDRESS = Shape(r'[^\s"]+', "an address", r'[^\s"]', r'[^\s"]')
PORT = Shape(r"\d+|-", "a port number", r"[\d-]", r"[\d-]")
URI_PATH = Shape(_PATH_CHAR + "*", "a path (up to ? or a space)", r'[^?\s"]', r'[^?\s"]')
URI_WITH_QUERY = Shape(_QUERY_CHAR + "*", "a path and query (up to a space)", r'[^\s"]', r'[^\s"]')
QUERY = Shape(rf"(?:\?{_QUERY_CHAR}*)?", "? and the query string, or nothing", r'[^\s"]', r"\?")
IS_ARGS = Shape(r"\??", "? or nothing", "", r"\?")
_BOUNDARY_SAMPLE = [chr(c) for c in range(32, 127)] + ["\t", "\u00e9"]


def fixed(pattern: str, describe: str) -> Shape:
    """A value of a fixed shape that starts with a digit (times)."""
    return Shape(pattern, describe, "", r"\d")


@dataclass(frozen=True)
class Element:
    """A piece of a format string: literal text (`name` None) or a field with its pattern."""

    text: str  # as written in the format (`$status`, `%>s`, or the literal)
    pattern: str  # regex of the value (literal: re.escape(text))
    name: str | None = None  # the field's display name; None for literal text
    describe: str = ""  # for error messages: what the field looks like
    fast: str | None = None
    """For the path field: a stricter pattern with one group that captures the stored path itself
    (e.g. from `GET /p?q HTTP/1.1` only `/p`), used in the fast expression; a line it refuses is
    parsed again with `pattern` and the path converter. Every value it accepts is one `pattern`
    accepts and the path converter turns into the captured text (a property test checks it)."""
    holds: str | None = None  # see Shape
    starts: str | None = None

    @classmethod
    def field(cls, text: str, name: str, shape: Shape, fast: str | None = None) -> Element:
        return cls(text, shape.pattern, name, shape.describe, fast, shape.holds, shape.starts)


def check_boundaries(source: str, elements: list[Element]) -> None:
    """Refuse a format in which two fields touch and the first can hold what the second starts with:
    no line would say where one ends (`%h%l`, `$host$request_uri`)."""
    for a, b in itertools.pairwise(elements):
        if a.name is None or b.name is None or a.holds == "":
            continue
        holds, starts = a.holds, b.starts
        if (
            holds is None
            or starts is None
            or any(re.fullmatch(holds, c) and re.fullmatch(starts, c) for c in _BOUNDARY_SAMPLE)
        ):
            raise FormatError(
                f"{source}: {a.text} and {b.text} touch (nothing between them) and {a.text} can hold what "
                f"{b.text} starts with, so no line says where one ends: put a character between them"
            )


@dataclass
class Roles:
    """Which field feeds each stored value, and how its text is converted."""

    time: str
    time_conv: Callable[[str], SecondAndFraction | None]
    customer: CustomerRule
    customer_field: str
    status: str
    duration: str
    duration_conv: Callable[[str], str | None] | None  # None: the field's regex already validates it
    path: str | None
    path_conv: Callable[[str], str]
    time_bulk: Callable[[list[str]], tuple[Ints, Mask] | None] | None = None
    """The time converter for a whole column (`bulk_times`), when the time field has one."""


def fast_path_pattern(kind: str, keep_query: bool) -> str:
    """The `Element.fast` pattern of a `request` (`GET /p?q HTTP/1.1`, quoted), `uri_query` (`/p?q`)
    or `uri` (`/p`) field: plain paths only (no spaces, quotes, escapes or control characters);
    anything else takes the general path."""
    plain = r'[^?\s"\\\x00-\x1f\x7f]'
    query = r'(?:\?[^\s"\\]*)?'
    # the value ends where a path must end, so that an escape the fast pattern stops at is never
    # left for a neighbouring field to take (`$uri$is_args$args` with `/t\xc3\xa9st`)
    ends = r'(?=[\s"]|$)'
    if kind == "uri":
        return rf'({plain}{{1,4096}})(?=[?\s"]|$)'
    if kind == "uri_query":
        return r'([^\s"\\\x00-\x1f\x7f]{1,4096})' + ends if keep_query else f"({plain}{{1,4096}}){query}{ends}"
    target = r'(/[^\s"\\\x00-\x1f\x7f]{0,4095})' if keep_query else f"(/{plain}{{0,4095}}){query}"
    return rf"[A-Z]{{1,20}} {target} HTTP/\d(?:\.\d)?"


def literal(text: str) -> Element:
    return Element(text, re.escape(text))


def follow_pattern(elements: list[tuple[str, str | None]], i: int, quoted_escapes: bool) -> str:
    """The generic value pattern of field i: anything up to the next literal's first character
    (within double quotes and with backslash escapes: also `\\"`)."""
    nxt = elements[i + 1][0] if i + 1 < len(elements) and elements[i + 1][1] is None else None
    if nxt is None:
        return r".*?" if i + 1 < len(elements) else r"[^\r\n]*"
    ch = nxt[0]
    if ch == '"' and quoted_escapes:
        return r'[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*'
    return rf"[^{re.escape(ch)}\r\n]*"


class RegexPlan:
    """Parses chunks and single lines of one compiled format (see the module docstring)."""

    def __init__(self, source: str, elements: list[Element], roles: Roles) -> None:
        check_boundaries(source, elements)
        self.source = source  # e.g. "NGINX_LOG_FORMAT"
        self.elements = elements
        self.roles = roles
        wanted = {
            roles.time: 0,
            roles.customer_field: 1,
            roles.status: 3,
            roles.duration: 4,
        }
        if roles.path is not None:
            wanted.setdefault(roles.path, 2)
        fast: list[str] = []
        general: list[str] = []
        full: list[str] = []
        self._path_in_fast = False
        group_of: dict[str, int] = {}
        n = 0
        for j, e in enumerate(elements):
            if e.name is None:
                fast.append(e.pattern)
                general.append(e.pattern)
                full.append(e.pattern)
                continue
            full.append(f"(?P<f{j}>{e.pattern})")
            if e.name in wanted and e.name not in group_of:
                n += 1
                group_of[e.name] = n
                general.append(f"({e.pattern})")
                if e.fast is not None and e.name == roles.path and e.name != roles.customer_field:
                    fast.append(e.fast)
                    self._path_in_fast = True
                else:
                    fast.append(f"({e.pattern})")
                continue
            general.append(f"(?:{e.pattern})")
            fast.append(f"(?:{e.pattern})")
        self._rows = rows_pattern("".join(fast))
        self._groups = n
        self._general = re.compile("^" + "".join(general) + r"\r?$")
        self._full = re.compile("^" + "".join(full) + r"\r?$")
        self._idx = (
            group_of[roles.time],
            group_of[roles.customer_field],
            group_of[roles.path] if roles.path is not None else group_of[roles.time],  # no path: ignored
            group_of[roles.status],
            group_of[roles.duration],
        )
        self._prefixes: dict[int, re.Pattern[str]] = {}
        shown = {e.name: e.text for e in elements if e.name is not None}
        self._shown = (shown[roles.time], shown[roles.status], shown[roles.duration])  # for reasons

    # -- fast path ---------------------------------------------------------------------------
    def parse_chunk(self, chunk: Chunk) -> ParsedChunk:
        """Parse a chunk of complete lines into columns of requests and rejects (with byte offsets):
        as columns (`formats.columns`) when the chunk is ASCII, else line by line."""
        cols = split_lines(self._rows, chunk.data, self._groups)
        if cols is None:  # byte and character offsets differ, or no lines: the careful path
            return self.parse_chunk_by_line(chunk)
        r = self.roles
        n = len(cols)
        raw_time, raw_customer, raw_path, statuses, durations = (cols.fields[g - 1] for g in self._idx)
        seconds, valid, fractions = self._seconds(raw_time, cols.matched())  # unmatched lines: invalid
        times, fits = point_times(seconds, fractions, cols.starts + chunk.offset, chunk.file_key)
        customers = Customers()
        codes = customers.codes(raw_customer, self._customer_or_none)
        ok = valid & fits & (codes >= 0)
        bad_statuses = {s for s in dict.fromkeys(statuses) if s is not None and s[0] not in "12345"}
        if bad_statuses:
            ok &= ~among(statuses, bad_statuses, n)
        if r.duration_conv is not None:
            durations, refused = converted(durations, r.duration_conv)
            if refused:
                ok &= np.fromiter((d is not None for d in durations), np.bool_, n)
        if r.path is None:
            paths: list[str | None] = ["-"] * n
        elif self._path_in_fast:
            paths = raw_path
        else:
            paths = converted(raw_path, r.path_conv)[0]
        columns = ChunkColumns(chunk, cols, ok, codes, customers, times, paths, statuses, durations)
        return columns.parsed(lambda line, offset: self._one_line(line, offset, chunk.file_key))

    def _one_line(self, line: str, offset: int, file_key: int) -> Request | str:
        """One line by the general expression: its request, or why it is refused."""
        general = self._general.match(line)
        return self._convert(general, offset, file_key) if general else self.explain(line)

    def _seconds(
        self, texts: list[str | None], matched: npt.NDArray[np.bool_] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], list[str | None] | None]:
        """Epoch seconds of each line's time text, which are valid, and the fractions as written
        (None: no line has one). Unmatched lines (no text) count as invalid."""
        n = len(texts)
        bulk = self.roles.time_bulk
        got = None if bulk is None else bulk(present(texts, matched))  # type: ignore[arg-type]
        if got is not None:
            return *spread(got, matched), None
        convert = self.roles.time_conv
        seen = {t: convert(t) for t in dict.fromkeys(texts) if t is not None}
        whens = [seen.get(t) if t is not None else None for t in texts]
        usable = [w is not None and -SAFE_SECONDS < w[0] < SAFE_SECONDS for w in whens]
        seconds = np.fromiter((w[0] if u else 0 for w, u in zip(whens, usable, strict=True)), np.int64, n)  # type: ignore[index]
        fractions = [w[1] if w is not None else None for w in whens]
        return seconds, np.array(usable, dtype=np.bool_), fractions

    def _customer_or_none(self, raw: str) -> str | None:
        try:
            return self.roles.customer(raw)
        except FieldError:
            return None  # refused: the line takes the per-line path, which says why

    def parse_chunk_by_line(self, chunk: Chunk) -> ParsedChunk:
        """The chunk parsed one line at a time with the general expression: what `parse_chunk` must
        give for every chunk (the property test holds the fast path to it)."""
        requests = RequestLines()
        rejects: list[Reject] = []
        lines = self._by_line(chunk, chunk.data, 0, requests, rejects)
        return ParsedChunk(requests.columns(), rejects, lines)

    def _convert(self, m: re.Match[str], offset: int, file_key: int) -> Request | str:
        """One line matched by the general expression as (customer, time, path, status, duration),
        or why it is refused."""
        r = self.roles
        raw_time, raw_customer, raw_path, status, dur = m.group(*self._idx)
        when = r.time_conv(raw_time)
        if when is None:
            return f"invalid time {raw_time[:60]!r} in {self._shown[0]}"
        try:
            customer = r.customer(raw_customer)
        except FieldError as exc:
            return str(exc)
        if status[0] not in "12345":
            return f"invalid status {status!r} in {self._shown[1]}: expected 100-599"
        if r.duration_conv is not None:
            converted_duration = r.duration_conv(dur)
            if converted_duration is None:
                return f"no duration: {self._shown[2]} is {dur[:40]!r}"
            dur = converted_duration
        return customer, point_time(when[0], when[1], offset, file_key), r.path_conv(raw_path), status, dur

    def _by_line(self, chunk: Chunk, raw: bytes, base: int, requests: RequestLines, rejects: list[Reject]) -> int:
        """Lines of `raw` (starting at byte `base` of the chunk) one at a time; returns lines seen."""
        seen = 0
        for offset, line in lines_of(chunk, raw, base, rejects):
            seen += 1
            if line is None:
                continue
            got = self._one_line(line, offset, chunk.file_key)
            if isinstance(got, str):
                reject(rejects, chunk, offset, line, got)
            else:
                requests.add(*got)
        return seen

    # -- slow path: explanations -------------------------------------------------------------
    def _prefix(self, k: int) -> re.Pattern[str]:
        p = self._prefixes.get(k)
        if p is None:
            p = self._prefixes[k] = re.compile("^" + "".join(e.pattern for e in self.elements[:k]))
        return p

    def explain(self, line: str) -> str:
        """Why a line that the format's expression refused does not match: where, and what was expected."""
        line = line.removesuffix("\r")
        if not line.strip():
            return "empty line"
        matched, end = 0, 0
        for k in range(1, len(self.elements) + 1):
            m = self._prefix(k).match(line)
            if m is None:
                break
            matched, end = k, m.end()
        found = line[end : end + 40]
        if matched == len(self.elements):
            return f"does not match {self.source}: unexpected text after the last field at column {end + 1}: {found!r}"
        e = self.elements[matched]
        after = next((x.text for x in reversed(self.elements[:matched]) if x.name is not None), None)
        what = f"{e.text!r}" if e.name is None else f"{e.text}{' (' + e.describe + ')' if e.describe else ''}"
        if e.name is None and matched + 1 < len(self.elements):
            what += f" then {self.elements[matched + 1].text}"
        where = f" after {after}" if after else ""
        return f"does not match {self.source}: expected {what}{where} at column {end + 1}, found {found!r}"

    def parse_line(self, line: str) -> LineRecord:
        """One line, field by field, with the stored values or the reason it is refused."""
        line = line.removesuffix("\n")
        full = self._full.match(line)
        fields: dict[str, str] = {}
        if full is not None:
            for j, e in enumerate(self.elements):
                if e.name is not None:
                    fields.setdefault(e.name, full.group(f"f{j}"))
        m = self._general.match(line)
        if m is None:
            return LineRecord(fields, None, self.explain(line))
        requests = RequestLines()
        got = self._convert(m, 0, 0)
        if not isinstance(got, str):
            requests.add(*got)
        return LineRecord.from_batches(fields, requests.columns().batches(), got if isinstance(got, str) else None)
