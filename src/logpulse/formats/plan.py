"""A line format compiled from a server's own format string (nginx `log_format`, Apache `LogFormat`).

The format string is split into literal text and fields; each field has a regular expression (a
specific one for the fields whose shape is known, such as a time or a status, else "anything up to
the next literal character"). From that list, `RegexPlan` compiles once:

- the *fast* expression: one regex for the whole line in which only the five fields logpulse stores
  (time, customer, path, status, duration) capture; a chunk of lines is matched by `finditer` over
  the whole chunk, and per line only those five groups are converted (converters cache by minute
  and by customer value, so most lines cost a few dict lookups);
- the *general* expression: the same five captures with every field's general pattern, for the
  lines the fast one refuses (escaped or unusual request lines) and for single lines;
- the *full* expression: every field captured by name, for `logpulse check-format`;
- prefixes of the format, tried only for a line that did not match, to say where and why.

Point identity and batches follow the contract of `logpulse.formats.logpulse` (see `point_time`).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from logpulse.formats.fields import CustomerRule, FieldError, SecondAndFraction
from logpulse.formats.lines import add_request, lines_of, reject
from logpulse.formats.logpulse import point_time
from logpulse.formats.record import LineRecord
from logpulse.formats.spec import FormatError
from logpulse.model import Chunk, ParsedChunk, Reject, RequestBatch


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
        self._fast = re.compile("^" + "".join(fast) + r"\r?$", re.MULTILINE)
        self._general = re.compile("^" + "".join(general) + r"\r?$")
        self._full = re.compile("^" + "".join(full) + r"\r?$")
        self._idx = (
            group_of[roles.time],
            group_of[roles.customer_field],
            group_of[roles.path] if roles.path is not None else 0,  # 0: the whole line, ignored
            group_of[roles.status],
            group_of[roles.duration],
        )
        self._prefixes: dict[int, re.Pattern[str]] = {}
        shown = {e.name: e.text for e in elements if e.name is not None}
        self._shown = (shown[roles.time], shown[roles.status], shown[roles.duration])  # for reasons

    # -- fast path ---------------------------------------------------------------------------
    def parse_chunk(self, chunk: Chunk) -> ParsedChunk:
        """Parse a chunk of complete lines into per-customer batches and rejects (with byte offsets)."""
        data = chunk.data
        batches: dict[str, RequestBatch] = {}
        rejects: list[Reject] = []
        if not data.isascii():  # byte and character offsets differ: line by line
            return ParsedChunk(batches, rejects, self._by_line(chunk, data, 0, batches, rejects))
        text = data.decode("ascii")
        r = self.roles
        base = chunk.offset
        key = chunk.file_key
        idx = self._idx
        time_conv, customer_rule, path_conv, duration_conv = r.time_conv, r.customer, r.path_conv, r.duration_conv
        customers: dict[str, str] = {}  # raw customer text -> stored id, for this chunk
        path_in_fast = self._path_in_fast
        last_time: str | None = None
        when: SecondAndFraction | None = None
        lines = 0
        expected = 0
        for m in self._fast.finditer(text):
            start = m.start()
            if start != expected:
                lines += self._by_line(chunk, data[expected:start], expected, batches, rejects)
            expected = m.end() + 1
            lines += 1
            raw_time, raw_customer, raw_path, status, dur = m.group(*idx)
            if raw_time != last_time:  # logs are in time order: consecutive lines share a second
                last_time, when = raw_time, time_conv(raw_time)
            customer = customers.get(raw_customer)
            if duration_conv is not None:
                dur = duration_conv(dur)
            if when is None or customer is None or status[0] not in "12345" or dur is None:
                # the uncommon cases (and converted durations) take the careful, explaining path
                line = m.group(0)
                general = self._general.match(line)
                reason = self._accept(general, base + start, key, batches) if general else self.explain(line)
                if reason is not None:
                    reject(rejects, chunk, base + start, line, reason)
                elif customer is None:
                    with contextlib.suppress(FieldError):  # refused: explained per line above
                        customers[raw_customer] = customer_rule(raw_customer)
                continue
            offset = base + start
            second, fraction = when
            if fraction is None:
                t = second * 1_000_000_000 + (offset + key) % 1_000_000_000
            else:
                t = point_time(second, fraction, offset, key)
            b = batches.get(customer)
            if b is None:
                b = batches[customer] = RequestBatch(customer)
            b.times.append(t)
            b.paths.append(raw_path if path_in_fast else path_conv(raw_path))
            b.statuses.append(status)
            b.durations.append(dur)
        if expected < len(text):
            lines += self._by_line(chunk, data[expected:], expected, batches, rejects)
        return ParsedChunk(batches, rejects, lines)

    def parse_chunk_by_line(self, chunk: Chunk) -> ParsedChunk:
        """The chunk parsed one line at a time with the general expression: what `parse_chunk` must
        give for every chunk (the property test holds the fast path to it)."""
        batches: dict[str, RequestBatch] = {}
        rejects: list[Reject] = []
        return ParsedChunk(batches, rejects, self._by_line(chunk, chunk.data, 0, batches, rejects))

    def _accept(self, m: re.Match[str], offset: int, file_key: int, batches: dict[str, RequestBatch]) -> str | None:
        """Convert one line matched by the general expression and append it to its customer's batch;
        or say why not."""
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
            converted = r.duration_conv(dur)
            if converted is None:
                return f"no duration: {self._shown[2]} is {dur[:40]!r}"
            dur = converted
        path = r.path_conv(raw_path)
        add_request(batches, customer, point_time(when[0], when[1], offset, file_key), path, status, dur)
        return None

    def _by_line(
        self, chunk: Chunk, raw: bytes, base: int, batches: dict[str, RequestBatch], rejects: list[Reject]
    ) -> int:
        """Lines of `raw` (starting at byte `base` of the chunk) one at a time; returns lines seen."""
        seen = 0
        for offset, line in lines_of(chunk, raw, base, rejects):
            seen += 1
            if line is None:
                continue
            m = self._general.match(line)
            reason = self._accept(m, offset, chunk.file_key, batches) if m is not None else self.explain(line)
            if reason is not None:
                reject(rejects, chunk, offset, line, reason)
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
        batches: dict[str, RequestBatch] = {}
        reason = self._accept(m, 0, 0, batches)
        return LineRecord.from_batches(fields, batches, reason)
