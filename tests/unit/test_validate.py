"""One check of a parsed request (formats.validate), applied by every parser that build_parser returns."""

from __future__ import annotations

import datetime as dt

import pytest

from logpulse.formats.registry import FormatOptions, build_parser
from logpulse.formats.validate import RequestCheck, ValidatedParser
from logpulse.model import Chunk

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
NOW_NS = int(NOW.timestamp()) * 10**9


def parser(**opts: object) -> ValidatedParser:
    built = build_parser(FormatOptions(**opts))  # type: ignore[arg-type]
    assert isinstance(built, ValidatedParser)
    return ValidatedParser(built.inner, RequestCheck(300, 86400, now_ns=lambda: NOW_NS))


GOOD = "2026-12-06 11:00:00 cust_1 /p 200 0.100"


@pytest.mark.parametrize(
    ("line", "kind", "words"),
    [
        ("2026-12-06 11:00:00 cust_1 /p 2٠٠ 0.100", "status", "ASCII digits"),
        ("2026-12-06 11:00:00 cust_1 /p 200 ٠.100", "duration", "ASCII digits"),
        ("1000-01-01 00:00:00 cust_1 /p 200 0.100", "time", "before 1970"),
        ("2100-01-01 00:00:00 cust_1 /p 200 0.100", "time", "MAX_FUTURE_S"),
        ("9999-12-31 23:59:59 cust_1 /p 200 0.100", "time", "MAX_FUTURE_S"),
        ("2026-12-06 12:05:01 cust_1 /p 200 0.100", "time", "MAX_FUTURE_S"),
        ("2026-12-06 11:00:00 cust_1 /p 200 86400.5", "duration", "MAX_DURATION_S"),
    ],
)
def test_implausible_values_are_rejected_naming_the_field(line: str, kind: str, words: str) -> None:
    data = f"{GOOD}\n{line}\n{GOOD}\n".encode()
    parsed = parser().parse_chunk(Chunk("a.log", 7, 1000, data))
    assert parsed.lines == 3
    assert sum(len(b) for b in parsed.batches.values()) == 2
    (r,) = parsed.rejects
    assert (r.kind, r.offset, r.line) == (kind, 1000 + len(GOOD) + 1, line)
    assert words in r.reason


def test_json_paths_that_line_protocol_cannot_take() -> None:
    p = parser(log_format="json")
    lines = [
        '{"time": "2026-12-06T11:00:00Z", "customer": "c", "path": "/a\\nb", "status": 200, "duration": 0.1}',
        '{"time": "2026-12-06T11:00:00Z", "customer": "c", "path": "/\\ud800", "status": 200, "duration": 0.1}',
        '{"time": "2026-12-06T11:00:00Z", "customer": "c", "path": "/ok", "status": 200, "duration": 0.1}',
    ]
    parsed = p.parse_chunk(Chunk("j.log", 1, 0, ("\n".join(lines) + "\n").encode()))
    assert parsed.batches["c"].paths == ["/a%0Ab", "/ok"]  # the parser encodes the newline
    (r,) = parsed.rejects
    assert r.kind == "path" and "U+D800" in r.reason


def test_every_invalid_line_of_a_large_chunk_is_located() -> None:
    lines = [GOOD.replace("11:00:00", f"11:{i // 60 % 60:02d}:{i % 60:02d}") for i in range(3000)]
    bad = {17, 1500, 1501, 2999}
    for i in bad:
        lines[i] = lines[i].replace(" 200 ", " 2²² ") if i % 2 else lines[i].replace("0.100", "nan")
    data = ("\n".join(lines) + "\n").encode()
    parsed = parser().parse_chunk(Chunk("a.log", 3, 0, data))
    starts = [sum(len(x.encode()) + 1 for x in lines[:i]) for i in bad]
    assert sorted(r.offset for r in parsed.rejects) == sorted(starts)
    assert parsed.lines == 3000 and sum(len(b) for b in parsed.batches.values()) == 2996
    whole = build_parser(FormatOptions()).parse_chunk(Chunk("a.log", 3, 0, ("\n".join(lines[:17]) + "\n").encode()))
    assert parsed.batches["cust_1"].times[:17] == whole.batches["cust_1"].times  # same point identity


def test_check_format_shows_the_reason() -> None:
    record = parser().parse_line("2026-12-06 11:00:00 cust_1 /p 200 inf")
    assert record.stored is None and record.reason is not None and "duration" in record.reason
    assert parser().parse_line(GOOD).stored is not None
