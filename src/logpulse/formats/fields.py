"""Field conversions shared by the nginx, Apache and JSON parsers: time, customer, path, duration.

Each converter is built once per configuration and called per line, so they are small closures or
objects with caches keyed by the text that repeats (a minute of timestamps, a customer value), never
by what is unique per line. Every converter returns `None` (or raises `FieldError`) for a value it
refuses, and the parser turns that into a reject with a reason.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable

from logpulse.formats.logpulse import CUSTOMER_ID_RE

NO_CUSTOMER = "no customer"
"""Reason (prefix) of a line whose customer field is empty, `-` or does not match CUSTOMER_PATTERN."""
MAX_PATH = 4096
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_CACHE_LIMIT = 200_000

SecondAndFraction = tuple[int, str | None]
"""A time as whole UTC epoch seconds plus the fraction's digits as written (None: no fraction)."""


class FieldError(ValueError):
    """A value that cannot be used: the message is the reject reason."""


# -- time -----------------------------------------------------------------------------------------
def _offset_seconds(tz: str) -> int:
    """'+0200', '-07:00', 'Z' -> seconds east of UTC."""
    if tz in ("Z", "z"):
        return 0
    digits = tz[1:].replace(":", "")
    sec = int(digits[:2]) * 3600 + int(digits[2:4]) * 60
    return -sec if tz[0] == "-" else sec


class TimeLocal:
    """nginx `$time_local` / Apache `%t`: `10/Oct/2026:13:55:36 +0200` -> UTC.

    The epoch of each (minute, offset) is computed once and cached; the seconds are added per line.
    """

    PATTERN = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"

    def __init__(self) -> None:
        self._cache: dict[str, int | None] = {}
        self._last = ("", 0)  # (minute and offset text, its epoch): logs are in time order

    def _minute(self, key: str) -> int | None:
        # key: '10/Oct/2026:13:55 +0200'
        try:
            day = dt.date(int(key[7:11]), _MONTHS[key[3:6]], int(key[0:2]))
            hour, minute = int(key[12:14]), int(key[15:17])
            if hour > 23 or minute > 59:
                return None
            return calendar.timegm(day.timetuple()) + hour * 3600 + minute * 60 - _offset_seconds(key[18:23])
        except (KeyError, ValueError):
            return None

    def __call__(self, text: str) -> SecondAndFraction | None:
        key = text[:17] + text[20:]
        last_key, last_minute = self._last
        if key == last_key:
            sec = int(text[18:20])
            return (last_minute + sec, None) if sec < 61 else None
        minute = self._cache.get(key)
        if minute is None:
            if key in self._cache:
                return None
            minute = self._minute(key)
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = minute
            if minute is None:
                return None
        self._last = (key, minute)
        sec = int(text[18:20])
        return (minute + sec, None) if sec < 61 else None


_ISO_RE = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d\d:?\d\d)?$")


class Iso8601:
    """RFC 3339 / ISO 8601 (`$time_iso8601`, JSON times): offsets converted to UTC; no offset = UTC."""

    PATTERN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)"

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str, str | None], int | None] = {}

    def __call__(self, text: str) -> SecondAndFraction | None:
        m = _ISO_RE.match(text)
        if m is None:
            return None
        date, hh, mm, ss, frac, tz = m.groups()
        key = (date, hh, mm, tz)
        minute = self._cache.get(key)
        if minute is None:
            if key in self._cache:
                return None
            try:
                day = dt.date.fromisoformat(date)
                ok = int(hh) < 24 and int(mm) < 60
            except ValueError:
                ok = False
            minute = (
                calendar.timegm(day.timetuple()) + int(hh) * 3600 + int(mm) * 60 - _offset_seconds(tz or "Z")
                if ok
                else None
            )
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = minute
            if minute is None:
                return None
        sec = int(ss or 0)
        return (minute + sec, frac) if sec < 61 else None


_EPOCH_RE = re.compile(r"(\d{1,19})(?:\.(\d{1,9}))?", re.ASCII)


def epoch_seconds(text: str) -> SecondAndFraction | None:
    """`$msec`, `%{sec}t`: `1696942536.123` (seconds with an optional fraction)."""
    m = _EPOCH_RE.fullmatch(text)
    if m is None:
        return None
    return int(m.group(1)), m.group(2)


def epoch_scaled(digits: int) -> Callable[[str], SecondAndFraction | None]:
    """Whole milliseconds (digits=3) or microseconds (6) since the epoch: `%{msec}t`, `%{usec}t`."""
    scale = 10**digits

    def convert(text: str) -> SecondAndFraction | None:
        if not (text.isascii() and text.isdigit()):
            return None
        v = int(text)
        return v // scale, f"{v % scale:0{digits}d}"

    return convert


def epoch_auto(value: object) -> SecondAndFraction | None:
    """A JSON epoch number: seconds, or ms / µs / ns told apart by magnitude (documented).

    `value` is whatever the JSON held: null, a list, a bool, `Infinity` or a digit string in another
    script is no time (None), never an exception.
    """
    if isinstance(value, bool) or not isinstance(value, float | int | str):
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            return epoch_seconds(value)
        value = int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            return None
        if value >= 1e11:  # milliseconds (or finer) as a float
            return epoch_auto(int(value))
        return epoch_seconds(repr(value)) if "e" not in repr(value) else (int(value), None)
    if value < 0:
        return None
    for digits, limit in ((0, 10**11), (3, 10**14), (6, 10**17), (9, 10**20)):
        if value < limit:
            return (value, None) if digits == 0 else (value // 10**digits, f"{value % 10**digits:0{digits}d}")
    return None


# -- text escapes ---------------------------------------------------------------------------------
_HEX_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")
_C_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"v": b"\v", b"f": b"\f", b"b": b"\b", b'"': b'"', b"\\": b"\\"}
_APACHE_ESCAPE = re.compile(rb'\\(x[0-9A-Fa-f]{2}|[ntrvfb"\\])')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unescape_nginx_default(text: str) -> str:
    """nginx `escape=default`: `"`, `\\`, bytes < 32 and > 126 are written as `\\xHH`."""
    raw = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return raw.decode("utf-8", "replace")


def unescape_json_string(text: str) -> str:
    """nginx `escape=json`: the value is the inside of a JSON string."""
    try:
        value = json.loads(f'"{text}"')
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text


def unescape_apache(text: str) -> str:
    """Apache: `\\"` and `\\\\`, C escapes for whitespace, `\\xhh` for other bytes."""

    def one(m: re.Match[bytes]) -> bytes:
        e = m.group(1)
        return bytes([int(e[1:], 16)]) if e[:1] == b"x" else _C_ESCAPES[e]

    return _APACHE_ESCAPE.sub(one, text.encode("utf-8")).decode("utf-8", "replace")


def no_unescape(text: str) -> str:
    return text


# -- customer -------------------------------------------------------------------------------------
class CustomerRule:
    """Raw field text -> stored customer id: pattern, then hash or validation; results cached.

    Returns the id, or raises `FieldError` whose message is the reject reason (`no customer ...`
    for an absent one, `invalid customer id ...` for one that cannot be a tag without hashing).
    """

    def __init__(
        self,
        source: str,
        pattern: re.Pattern[str] | None,
        hash_key: str,
        unescape: Callable[[str], str],
        absent: tuple[str, ...] = ("", "-"),
    ) -> None:
        self._source = source
        self._absent = absent  # values that mean "nobody" (Apache writes an empty user as `""`)
        self._pattern = pattern
        self._key = hash_key.encode() if hash_key else None
        self._unescape = unescape
        self._cache: dict[str, str | FieldError] = {}

    def __call__(self, raw: str | None) -> str:
        if raw is None:
            raise FieldError(f"{NO_CUSTOMER}: {self._source} is missing")
        got = self._cache.get(raw)
        if got is None:
            got = self._resolve(raw)
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[raw] = got
        if isinstance(got, FieldError):
            raise got
        return got

    def _resolve(self, raw: str) -> str | FieldError:
        value = self._unescape(raw) if "\\" in raw else raw
        if raw in self._absent or value in self._absent:
            return FieldError(f"{NO_CUSTOMER}: {self._source} is {value!r}")
        if self._pattern is not None:
            m = self._pattern.search(value)
            if m is None or not m.group("customer"):
                return FieldError(f"{NO_CUSTOMER}: {self._source} {value[:80]!r} does not match CUSTOMER_PATTERN")
            value = m.group("customer")
        if self._key is not None:
            return stored_customer_id(value, self._key)
        if CUSTOMER_ID_RE.match(value) is None:
            return FieldError(
                f"invalid customer id {value[:80]!r} from {self._source}: expected 1-64 of A-Z a-z 0-9 _ . - "
                "(or set CUSTOMER_HASH_KEY to store a hash of any value)"
            )
        return value


def stored_customer_id(customer: str, key: bytes) -> str:
    """The id stored for `customer` under CUSTOMER_HASH_KEY: HMAC-SHA256, first 16 hex characters."""
    return hmac.new(key, customer.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


# -- path -----------------------------------------------------------------------------------------
def clean_path(path: str, keep_query: bool, unescape: Callable[[str], str]) -> str:
    """A stored path: unescaped, query string cut (unless kept), control characters %-encoded, capped."""
    if not keep_query:
        q = path.find("?")
        if q >= 0:
            path = path[:q]
    if "\\" in path:
        path = unescape(path)
        if not keep_query:
            path = path.split("?", 1)[0]
    if _CONTROL.search(path):
        path = _CONTROL.sub(lambda m: f"%{ord(m.group(0)):02X}", path)
    return path[:MAX_PATH] or "-"


def path_converter(kind: str | None, keep_query: bool, unescape: Callable[[str], str]) -> Callable[[str], str]:
    """Stored path from a field: `request` (`GET /p?q HTTP/1.1`), `uri` (`/p?q` or `/p`) or None
    (no path: `-`).

    One closure per configuration: the common case (ASCII, no escapes) costs a few string methods."""
    if kind is None:
        return lambda raw: "-"
    if kind == "uri":
        return lambda raw: clean_path(raw, keep_query, unescape)

    def from_request(raw: str) -> str:
        path = target_of_request(raw)
        if path is None:
            return "-"
        if not keep_query:
            q = path.find("?")
            if q >= 0:
                path = path[:q]
        if "\\" in path or not path or len(path) > MAX_PATH:
            return clean_path(path, keep_query, unescape)
        return path

    return from_request


_METHOD = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}")
_ABSOLUTE_TARGET = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def target_of_request(request: str) -> str | None:
    """The target of a request line: `GET /a?b HTTP/1.1` -> `/a?b`, HTTP/0.9 `GET /a` -> `/a`.

    None for what is not `METHOD TARGET [PROTOCOL]` with an origin (`/...`), absolute (`http://...`),
    `*` or CONNECT target: scanner junk (`Gh0st...`), a TLS handshake sent to a plain-text port
    (`\\x16\\x03\\x01...`), `Cookie: mstshash=...`, `-` or nothing. Those are stored as `-`: they are
    requests of the client, but no path of the API."""
    method, space, rest = request.partition(" ")
    if not space or _METHOD.fullmatch(method) is None:
        return None
    j = rest.rfind(" ")
    if j >= 0:
        if not rest.startswith("HTTP/", j + 1):
            return None
        rest = rest[:j]
    if rest.startswith("/") or rest == "*" or _ABSOLUTE_TARGET.match(rest) or (method == "CONNECT" and rest):
        return rest
    return None


# -- duration -------------------------------------------------------------------------------------
_SECONDS_RE = re.compile(r"\d{1,9}(?:\.\d{1,9})?$")


def seconds_text(text: str) -> str | None:
    """A duration in seconds as written (`0.532`): kept as text, validated."""
    return text if _SECONDS_RE.match(text) else None


def scaled_text(digits: int) -> Callable[[str], str | None]:
    """Whole ms (3) or µs (6) -> seconds text, exactly (`532000` µs -> `0.532000`)."""
    scale = 10**digits

    def convert(text: str) -> str | None:
        n = len(text)
        if n > 15 or not (text.isascii() and text.isdigit()):
            return None
        if n <= digits:  # by slicing, no arithmetic: `1532` µs -> `0.001532`
            return "0." + text.rjust(digits, "0")
        if text[0] != "0":
            return f"{text[:-digits]}.{text[-digits:]}"
        v = int(text)
        return f"{v // scale}.{v % scale:0{digits}d}"

    return convert


def upstream_times(text: str) -> str | None:
    """`$upstream_response_time`: `0.010`, `0.010, 0.020` (several servers tried) or `0.010 : 0.020`
    (internal redirect): the sum, in seconds; `-` entries (no answer) count 0; only `-` -> None."""
    if "," not in text and ":" not in text:
        return seconds_text(text)
    total = 0.0
    seen = False
    for part in re.split(r"\s*[,:]\s*", text.strip()):
        if part == "-":
            continue
        if not _SECONDS_RE.match(part):
            return None
        total += float(part)
        seen = True
    return f"{total:.3f}" if seen else None


def number_seconds(unit: str) -> Callable[[object], str | None]:
    """A JSON duration (number or numeric string) in `unit` -> seconds text."""
    scale = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]

    def convert(value: object) -> str | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        if isinstance(value, int):
            if value < 0:
                return None
            return str(value) if scale == 1 else f"{value // scale}.{value % scale:0{len(str(scale)) - 1}d}"
        if isinstance(value, float):
            if not value >= 0 or value == float("inf"):
                return None
            return repr(value / scale) if "e" not in repr(value / scale) else f"{value / scale:.9f}"
        return None

    return convert
