"""The log format: what is accepted, why lines are refused, and the point identity."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.formats.lines import MAX_LINE_IN_REJECT
from logpulse.formats.logpulse import explain, parse_chunk
from logpulse.model import Chunk

GOOD = "2024-09-29 01:00:00 cust_1 /api/v1/resource1 200 0.532"


def chunk(text: str | bytes, offset: int = 0, key: int = 7) -> Chunk:
    data = text.encode() if isinstance(text, str) else text
    return Chunk("test.log", key, offset, data)


def test_valid_line_fields() -> None:
    p = parse_chunk(chunk(GOOD + "\n"))
    assert p.lines == 1 and not p.rejects
    b = p.batches["cust_1"]
    assert b.paths == ["/api/v1/resource1"] and b.statuses == ["200"] and b.durations == ["0.532"]
    second = calendar.timegm(dt.datetime(2024, 9, 29, 1, 0, 0).timetuple())
    assert second * 10**9 <= b.times[0] < (second + 1) * 10**9


def test_fraction_keeps_its_resolution() -> None:
    p = parse_chunk(chunk("2024-09-29 01:00:00.250 c /p 200 1\n2024-09-29 01:00:00.250000001 c /p 200 1\n"))
    t = p.batches["c"].times
    base = calendar.timegm(dt.datetime(2024, 9, 29, 1).timetuple()) * 10**9
    assert base + 250_000_000 <= t[0] < base + 251_000_000
    assert t[1] == base + 250_000_001


@pytest.mark.parametrize(
    "line, reason",
    [
        ("", "empty line"),
        ("garbage", "expected 6 fields"),
        ("2024-13-01 00:00:00 c /p 200 1", "invalid date"),
        ("2024-02-30 00:00:00 c /p 200 1", "no such day"),
        ("2024-02-01 24:00:00 c /p 200 1", "invalid time"),
        ("2024-02-01 00:00:00 c$ /p 200 1", "invalid customer id"),
        ("2024-02-01 00:00:00 " + "c" * 65 + " /p 200 1", "invalid customer id"),
        ("2024-02-01 00:00:00 c /p 99 1", "invalid status"),
        ("2024-02-01 00:00:00 c /p 200 -1", "invalid duration"),
        ("2024-02-01 00:00:00 c /p 200 1e3", "invalid duration"),
        ("2024-02-01  00:00:00 c /p 200 1", "expected 6 fields"),
        ("2024-02-01 00:00:00 c /p 200 1 extra", "expected 6 fields"),
    ],
)
def test_rejects_say_why_and_where(line: str, reason: str) -> None:
    text = GOOD + "\n" + line + "\n" + GOOD + "\n"
    p = parse_chunk(chunk(text, offset=1000))
    assert p.lines == 3
    assert len(p.batches["cust_1"]) == 2
    assert len(p.rejects) == 1
    r = p.rejects[0]
    assert reason in r.reason
    assert r.offset == 1000 + len(GOOD) + 1 and r.line == line and r.path == "test.log"


def test_a_refused_line_is_kept_bounded_on_the_fast_path_too() -> None:
    """A line of the fast path's grammar with a day that does not exist is refused there, and its
    dead-letter copy is cut like every other refused line's."""
    line = "2024-02-30 00:00:00 c /" + "p" * 4095 + " 200 1"
    p = parse_chunk(chunk(GOOD + "\n" + line + "\n"))
    assert len(p.rejects) == 1 and "no such day" in p.rejects[0].reason
    assert p.rejects[0].line == line[:MAX_LINE_IN_REJECT] and len(line) > MAX_LINE_IN_REJECT


def test_invalid_utf8_is_rejected_with_byte_offset() -> None:
    data = (GOOD + "\n").encode() + b"2024-02-01 00:00:00 c /\xff 200 1\n" + "2024-02-01 00:00:00 c /é 200 1\n".encode()
    p = parse_chunk(chunk(data, offset=10))
    assert [r.offset for r in p.rejects] == [10 + len(GOOD) + 1]
    assert "UTF-8" in p.rejects[0].reason
    assert p.batches["c"].paths == ["/é"]


def test_crlf_and_missing_final_newline() -> None:
    p = parse_chunk(chunk(GOOD + "\r\n" + GOOD))
    assert p.lines == 2 and len(p.batches["cust_1"]) == 2 and not p.rejects


def test_same_second_duplicates_get_distinct_deterministic_times() -> None:
    text = (GOOD + "\n") * 50
    a = parse_chunk(chunk(text)).batches["cust_1"].times
    assert len(set(a)) == 50
    assert parse_chunk(chunk(text)).batches["cust_1"].times == a  # replay -> same points
    # The same lines at another place of another file are other points.
    other = parse_chunk(chunk(text, offset=5, key=99)).batches["cust_1"].times
    assert set(other).isdisjoint(a)


def test_chunk_split_does_not_change_point_times() -> None:
    lines = [f"2024-09-29 01:00:0{i % 10} cust_{i % 3} /p 200 0.{i:03d}\n" for i in range(30)]
    whole = parse_chunk(chunk("".join(lines)))
    cut = len("".join(lines[:11]).encode())
    first = parse_chunk(chunk("".join(lines[:11])))
    second = parse_chunk(chunk("".join(lines[11:]), offset=cut))
    for c, b in whole.batches.items():
        assert b.times == first.batches[c].times + second.batches[c].times


_field = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_lineish = st.one_of(
    st.builds(
        lambda d, t, c, p, s, u: f"{d} {t} {c} {p} {s} {u}",
        st.sampled_from(["2024-09-29", "2024-02-29", "2023-02-29", "2024-9-29", "x"]),
        st.sampled_from(["00:00:00", "23:59:59", "12:30:00.123456", "24:00:00", "1:2:3"]),
        st.one_of(st.sampled_from(["cust_1", "a.b-c", "x" * 64, "x" * 65, "bad/id"]), _field),
        st.one_of(st.sampled_from(["/api/v1/a", "/", "/p?q=1"]), _field),
        st.sampled_from(["200", "404", "599", "600", "20", "abc"]),
        st.sampled_from(["0.5", "0", "12.000", "-1", ".5", "1."]),
    ),
    _field,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_lineish, max_size=8))
def test_fast_and_slow_parsers_agree(lines: list[str]) -> None:
    """Every line is either accepted by the chunk parser or explained by `explain`, never both."""
    text = "".join(line + "\n" for line in lines)
    p = parse_chunk(chunk(text))
    assert p.lines == len(lines)
    rejected = {r.offset for r in p.rejects}
    offset = 0
    accepted = 0
    for line in lines:
        why = explain(line)
        assert (offset in rejected) == (why is not None), (line, why)
        accepted += why is None
        offset += len(line.encode()) + 1
    assert sum(len(b) for b in p.batches.values()) == accepted
