"""The `writes` marks: one packed point per flush, split under InfluxDB's string limit, and read back
as one mark per customer; rows a poll sees half-written or malformed never end a poll."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.formats.logpulse import CUSTOMER_ID_PATTERN
from logpulse.storage.marks import ANY_CUSTOMER, EVERY_TIME, PACK_CHARS, parse_row, restart_mark_line, write_mark_lines

NOW = 1_700_000_000_000_000_000


def test_one_flush_is_one_point_with_the_union_range_for_freshness() -> None:
    lines = write_mark_lines({"a": (5, 9), "b": (1, 3)}, 3, NOW, 512)
    assert lines == [f'writes,writer=3 min_time=1i,max_time=9i,backlog_bytes=512i,customers="a,5,9 b,1,3" {NOW}']
    assert write_mark_lines({"a": (5, 9)}, 0, NOW) == [
        f'writes,writer=0 min_time=5i,max_time=9i,customers="a,5,9" {NOW}'
    ]
    assert restart_mark_line(2, NOW) == f"writes,writer=2 every=true {NOW}"


def as_row(line: str) -> tuple[dict[str, str], dict[str, object]]:
    """A packed mark line as a poll returns it (this module's lines only: no escapes in them)."""
    found = re.fullmatch(r'writes,writer=(\d+) min_time=(-?\d+)i,max_time=(-?\d+)i,customers="([^"\\]*)" (\d+)', line)
    assert found, line
    writer, lo, hi, packed, at = found.groups()
    return {"writer": writer}, {"time": int(at), "min_time": int(lo), "max_time": int(hi), "customers": packed}


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(rf"\A{CUSTOMER_ID_PATTERN}\Z") | st.just("*"),
        st.tuples(st.integers(-(2**62), 2**62), st.integers(0, 2**62)),
        max_size=2000,
    )
)
def test_every_customer_reads_back_with_its_own_range_however_many(bounds: dict[str, tuple[int, int]]) -> None:
    lines = write_mark_lines(bounds, 1, NOW)
    assert all(len(line) < PACK_CHARS + 200 for line in lines)
    assert [int(line.rsplit(" ", 1)[1]) for line in lines] == [NOW + n for n in range(len(lines))]
    read: dict[str, tuple[int, int]] = {}
    for line in lines:
        tags, row = as_row(line)
        marks, whole = parse_row(tags, row)
        assert whole
        assert row["min_time"] == min(m[2] for m in marks) and row["max_time"] == max(m[3] for m in marks)
        read.update({c: (lo, hi) for c, _at, lo, hi in marks})
    assert read == bounds


def test_half_written_and_malformed_rows() -> None:
    packed = {"time": NOW, "min_time": 1, "max_time": 2, "customers": "a,1,2"}
    assert parse_row({}, packed) == ([("a", NOW, 1, 2)], True)
    assert parse_row({}, {**packed, "customers": None}) == ([], False)  # customers not visible yet
    assert parse_row({}, {**packed, "max_time": None}) == ([], False)
    for bad in ("a,1", "a,1,x", "a,1,2,3", ""):  # not what a writer writes: every customer, every time
        assert parse_row({}, {**packed, "customers": bad}) == ([(ANY_CUSTOMER, NOW, *EVERY_TIME)], True)
    assert parse_row({}, {"time": NOW, "every": True}) == ([(ANY_CUSTOMER, NOW, *EVERY_TIME)], True)
    # the per-customer form of earlier writers
    assert parse_row({"customer_id": "c"}, {"time": NOW, "min_time": 1, "max_time": 2}) == ([("c", NOW, 1, 2)], True)
    assert parse_row({"customer_id": "c"}, {"time": NOW, "min_time": 1}) == ([("c", NOW, *EVERY_TIME)], False)
