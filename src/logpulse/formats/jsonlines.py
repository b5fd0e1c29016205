"""JSON lines: one JSON object per line, fields named by JSON_FIELDS (dotted keys for nesting).

    JSON_FIELDS=time=ts,customer=user.id,path=http.path,status=http.status,duration=latency_ms
    DURATION_UNIT=ms

Times are RFC 3339 strings (offsets converted to UTC; no offset = UTC) or epoch numbers (seconds,
or milliseconds / microseconds / nanoseconds, told apart by magnitude). CUSTOMER_FROM, when set,
names the customer key instead of JSON_FIELDS' `customer`. Lines are decoded by the standard
library's `json` one at a time: each is a separate document, so there is no chunk-wide expression.
"""

from __future__ import annotations

import json
from typing import Any

from logpulse.formats.fields import (
    CustomerRule,
    FieldError,
    Iso8601,
    clean_path,
    epoch_auto,
    no_unescape,
    number_seconds,
    target_of_request,
)
from logpulse.formats.lines import RequestLines, lines_of, reject
from logpulse.formats.logpulse import point_time
from logpulse.formats.record import LineRecord
from logpulse.formats.spec import FormatError, FormatOptions, closest
from logpulse.model import Chunk, ParsedChunk, Reject

ROLES = ("time", "customer", "path", "status", "duration")
_MISSING = object()


def parse_fields(setting: str) -> dict[str, tuple[str, ...]]:
    """JSON_FIELDS -> {role: key path}; every role but `path` required."""
    out: dict[str, tuple[str, ...]] = {}
    for item in setting.split(","):
        if not item.strip():
            continue
        role, eq, key = item.partition("=")
        role, key = role.strip(), key.strip()
        if not eq or not key:
            raise FormatError(f"JSON_FIELDS: {item.strip()!r} is not role=key (e.g. status=http.status)")
        if role not in ROLES:
            raise FormatError(f"JSON_FIELDS: unknown role {role!r}: expected {', '.join(ROLES)}" + closest(role, ROLES))
        out[role] = tuple(key.split("."))
    for role in ("time", "status", "duration"):
        if role not in out:
            raise FormatError(f"JSON_FIELDS has no {role}=KEY: logpulse needs each request's {role}")
    return out


def _get(obj: Any, key: tuple[str, ...]) -> Any:
    for part in key:
        if not isinstance(obj, dict):
            return _MISSING
        obj = obj.get(part, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


class JsonLines:
    """Parser of JSON-lines access logs (see the module docstring)."""

    def __init__(self, opts: FormatOptions) -> None:
        keys = parse_fields(opts.json_fields)
        if opts.customer_from:
            keys["customer"] = tuple(opts.customer_from.split("."))
        if "customer" not in keys:
            raise FormatError("JSON_FIELDS has no customer=KEY and CUSTOMER_FROM is not set")
        self._keys = keys
        self._names = {role: ".".join(k) for role, k in keys.items()}
        self._time = Iso8601()
        self._customer = CustomerRule(
            self._names["customer"], opts.customer_pattern_re(), opts.customer_hash_key, no_unescape
        )
        self._duration = number_seconds(opts.duration_unit)
        self._keep = opts.keep_query_string

    def _convert(self, obj: Any) -> tuple[tuple[int, str | None], str, str, str, str] | str:
        """(time, customer, path, status, duration) of one decoded line, or the reject reason."""
        if not isinstance(obj, dict):
            return "not a JSON object"
        k, n = self._keys, self._names
        raw_time = _get(obj, k["time"])
        if raw_time is _MISSING:
            return f"no time: key {n['time']!r} is missing"
        when = (
            self._time(raw_time)
            if isinstance(raw_time, str) and not (raw_time.isascii() and raw_time.isdigit())
            else epoch_auto(raw_time)
        )
        if when is None:
            return f"invalid time {str(raw_time)[:60]!r} in {n['time']}: expected RFC 3339 or epoch seconds/ms"
        raw_customer = _get(obj, k["customer"])
        if isinstance(raw_customer, int) and not isinstance(raw_customer, bool):
            raw_customer = str(raw_customer)
        try:
            customer = self._customer(raw_customer if isinstance(raw_customer, str) else None)
        except FieldError as exc:
            return str(exc)
        status = _get(obj, k["status"])
        text = str(status) if isinstance(status, (int, str)) and not isinstance(status, bool) else ""
        if not (len(text) == 3 and text.isdigit() and text[0] in "12345"):
            return f"invalid status {str(status)[:20]!r} in {n['status']}: expected 100-599"
        raw_duration = _get(obj, k["duration"])
        duration = None if raw_duration is _MISSING else self._duration(raw_duration)
        if duration is None:
            return f"no duration: {n['duration']} is {str(raw_duration)[:40]!r}"
        path = "-"
        if "path" in k:
            raw_path = _get(obj, k["path"])
            if isinstance(raw_path, str):
                path = clean_path(self._path_text(raw_path), self._keep, no_unescape)
        return when, customer, path, text, duration

    @staticmethod
    def _path_text(raw: str) -> str:
        """The path of the `path` key: itself when it is one (`/files/my report.pdf`), else the
        target of a request line (`GET /p?q HTTP/1.1`), or `-` for what is neither."""
        if raw.startswith("/") or " " not in raw:
            return raw
        return target_of_request(raw) or "-"

    def _line(self, line: str) -> tuple[tuple[int, str | None], str, str, str, str] | str:
        line = line.removesuffix("\r")
        if not line.strip():
            return "empty line"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"not JSON: {exc.msg} at column {exc.colno}"
        return self._convert(obj)

    def parse_chunk(self, chunk: Chunk) -> ParsedChunk:
        """Parse a chunk of complete lines into columns of requests and rejects (with byte offsets)."""
        requests = RequestLines()
        rejects: list[Reject] = []
        lines = 0
        for offset, line in lines_of(chunk, chunk.data, 0, rejects):
            lines += 1
            if line is None:
                continue
            got = self._line(line)
            if isinstance(got, str):
                reject(rejects, chunk, offset, line, got)
                continue
            (second, fraction), customer, path, status, duration = got
            requests.add(customer, point_time(second, fraction, offset, chunk.file_key), path, status, duration)
        return ParsedChunk(requests.columns(), rejects, lines)

    def parse_line(self, line: str) -> LineRecord:
        line = line.removesuffix("\n")
        fields: dict[str, str] = {}
        try:
            obj = json.loads(line)
            if isinstance(obj, dict):
                fields = {
                    role: json.dumps(_get(obj, key))
                    for role, key in self._keys.items()
                    if _get(obj, key) is not _MISSING
                }
        except json.JSONDecodeError:
            pass
        parsed = self.parse_chunk(Chunk("<line>", 0, 0, line.encode("utf-8") + b"\n"))
        return LineRecord.from_batches(fields, parsed.batches, parsed.rejects[0].reason if parsed.rejects else None)
