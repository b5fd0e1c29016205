"""The column path of the nginx and Apache parsers gives exactly what their per-line path gives.

A chunk is split into columns by one expression, times are converted as a whole column and the
batches are cut from one sort by customer (`formats.columns`, `formats.bulk_times`); the logpulse
format's own chunk loop is held to its per-line path on the same kinds of chunks. These tests
hold each of those pieces to its one-at-a-time counterpart, on values drawn to include the hostile
and the unusual: days that do not exist, month names in the wrong case, offsets of 99 minutes,
years 0001 and 9999 (whose nanoseconds do not fit int64), empty lines, CRLF line ends, no final
newline, many customers in one chunk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.formats import logpulse
from logpulse.formats.bulk_times import iso_seconds, point_times, time_local_seconds
from logpulse.formats.columns import ascii_classes
from logpulse.formats.fields import TimeLocal
from logpulse.formats.plan import RegexPlan
from logpulse.formats.registry import FormatOptions, build_parser
from logpulse.formats.validate import ValidatedParser
from logpulse.model import Chunk, RequestBatch, RequestColumns

NGINX_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_customer_id" $request_time'
)


def two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda v: f"{v:02d}")


MONTHS = st.sampled_from(["Jan", "Feb", "Mar", "Apr", "Jun", "Sep", "Dec", "jan", "FEB", "Foo", "Mai"])
YEARS = st.one_of(st.sampled_from(["0000", "0001", "1969", "1970", "2000", "2100", "2024", "2262", "9999"]), two(0, 99))
TIME_LOCAL = st.builds(
    lambda d, mo, y, h, mi, s, sign, tz: f"{d}/{mo}/{y.rjust(4, '0')}:{h}:{mi}:{s} {sign}{tz}",
    two(0, 32),
    MONTHS,
    YEARS,
    two(0, 25),
    two(0, 61),
    two(0, 99),
    st.sampled_from("+-"),
    st.one_of(st.sampled_from(["0000", "0200", "0530", "0099"]), st.integers(0, 9999).map(lambda v: f"{v:04d}")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TIME_LOCAL, min_size=1, max_size=20))
def test_time_local_column_equals_one_at_a_time(texts: list[str]) -> None:
    got = time_local_seconds(texts)
    assert got is not None
    seconds, valid = got
    one = TimeLocal()
    for text, s, ok in zip(texts, seconds.tolist(), valid.tolist(), strict=True):
        expected = one(text)
        assert ok == (expected is not None), text
        if expected is not None:
            assert (s, None) == expected, text


def test_time_local_column_refuses_what_is_not_its_shape() -> None:
    assert time_local_seconds(["10/Oct/2026:13:55:36 +0200", "10/Oct/2026:13:55:36 +02000"]) is None
    assert time_local_seconds(["1x/Oct/2026:13:55:36 +0200"]) is None  # not a digit: one at a time
    assert time_local_seconds(["10/Oct/2026:13:55:36 *0200"]) is None
    assert time_local_seconds(["10/Oct/2026:13:55:36 +0\u0662\u0660\u0660"]) is None  # Arabic-Indic digits


DATE_MINUTES = st.builds(
    lambda y, mo, d, h, mi: f"{y.rjust(4, '0')}-{mo}-{d} {h}:{mi}",
    YEARS,
    two(1, 12),
    two(1, 31),
    two(0, 23),
    two(0, 59),
)


ISO_SECONDS = st.builds(lambda minute, s: f"{minute}:{s}", DATE_MINUTES, two(0, 59))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), ISO_SECONDS), min_size=1, max_size=20))
def test_iso_seconds_column_equals_one_at_a_time(texts: list[str | None]) -> None:
    """Days that do not exist, year 0000 and a missing text (None) are not real; the rest are
    the minute's epoch (`datetime`) plus the seconds."""
    got = iso_seconds(texts)
    assert got is not None
    seconds, real = got
    for text, s, ok in zip(texts, seconds.tolist(), real.tolist(), strict=True):
        minute = None if text is None else logpulse._minute_epoch(text[:16])
        assert ok == (minute is not None), text
        if minute is not None and text is not None:
            assert s == minute + int(text[17:19]), text


def test_iso_seconds_refuses_what_is_not_its_shape() -> None:
    assert iso_seconds(["2026-12-07 13:55:36", "2026-12-07 13:55:3"]) is None  # one character short
    assert iso_seconds(["2026-12-07T13:55:36"]) is None  # not a space between date and time
    assert iso_seconds(["2026/12/07 13:55:36"]) is None
    assert iso_seconds(["2026-12-07 13:5x:36"]) is None
    assert iso_seconds(["2026-12-07 13:55:3\u0663"]) is None  # an Arabic-Indic digit


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(10**10), 10**10),
            st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=9)),
            st.integers(0, 2**40),
        ),
        min_size=1,
        max_size=20,
    ),
    st.integers(0, 2**63 - 1),
)
def test_point_times_column_equals_point_time(lines: list[tuple[int, str | None, int]], file_key: int) -> None:
    seconds = np.array([s for s, _, _ in lines], dtype=np.int64)
    offsets = np.array([o for _, _, o in lines], dtype=np.int64)
    times, fits = point_times(seconds, [f for _, f, _ in lines], offsets, file_key)
    for (s, fraction, offset), t, ok in zip(lines, times.tolist(), fits.tolist(), strict=True):
        assert ok == (abs(s) < 9_000_000_000)
        if ok:
            assert t == logpulse.point_time(s, fraction, offset, file_key)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            r"\d+",
            r"[\d.]+",
            r"\d\d/[A-Z]",
            r"[^\d]\d",
            r"[]\d]+",
            r"[^]\d]+",
            r"\\d\d",
            r"(?:[\d-])+\D",
            r"[^\s\"]+ \S{1,3}",
            r"(/[^?\s\"\\\x00-\x1f\x7f]{0,9})(?:\?[^\s\"\\]*)?",
            r"\s*[\s\d]\S+",
            r"[^\S]\\s",
        ]
    ),
    st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=8),
)
def test_ascii_classes_is_the_same_expression_on_ascii_text(pattern: str, text: str) -> None:
    plain, rewritten = re.compile(pattern), re.compile(ascii_classes(pattern))
    escapes = ascii_classes(pattern).replace("\\\\", "")
    assert "\\d" not in escapes and "\\s" not in escapes
    assert bool(plain.fullmatch(text)) == bool(rewritten.fullmatch(text))
    assert plain.findall(text) == rewritten.findall(text)


def nginx_plan() -> RegexPlan:
    parser = build_parser(
        FormatOptions(log_format="nginx", nginx_log_format=NGINX_FORMAT, customer_from="$http_x_customer_id")
    )
    assert isinstance(parser, ValidatedParser) and isinstance(parser.inner, RegexPlan)
    return parser.inner


def nginx_line(time: str, customer: str, status: str = "200", path: str = "/v1/a") -> str:
    return f'10.0.0.1 - - [{time}] "GET {path} HTTP/1.1" {status} 512 "-" "curl/8" "{customer}" 0.532'


NGINX_LINES = st.one_of(
    st.builds(
        nginx_line,
        st.one_of(st.just("10/Oct/2026:13:55:36 +0200"), TIME_LOCAL),
        st.sampled_from(["acme", "bob", "-", "", "a b", "x" * 65]),
        st.sampled_from(["200", "404", "000", "600"]),
        st.sampled_from(["/v1/a", "/v1/a?x=1", "/t\\xc3\\xa9st", "/a b"]),
    ),
    st.sampled_from(["", "\r", "garbage", " ", "-"]),
)
LOGPULSE_LINES = st.one_of(
    st.builds(
        lambda m, s, f, c, st_: f"{m}:{s}{f} {c} /api/v1/x {st_} 0.5",
        DATE_MINUTES,
        two(0, 59),
        st.sampled_from(["", ".1", ".123456789", ".12"]),
        st.sampled_from(["cust_1", "cust_2", "a.b-c", "bad/id"]),
        st.sampled_from(["200", "503", "600"]),
    ),
    st.sampled_from(["", "\r", "garbage", "2024-02-30 00:00:00 c /p 200 0.5"]),
)


def chunk_of(lines: list[str], crlf: bool, final_newline: bool, offset: int = 100) -> Chunk:
    end = "\r\n" if crlf else "\n"
    text = end.join(lines) + (end if final_newline else "")
    return Chunk("access.log", 2**62 + 17, offset, text.encode())


@settings(max_examples=300, deadline=None)
@given(st.lists(NGINX_LINES, min_size=1, max_size=12), st.booleans(), st.booleans())
def test_nginx_columns_equal_lines(lines: list[str], crlf: bool, final_newline: bool) -> None:
    plan = nginx_plan()
    chunk = chunk_of(lines, crlf, final_newline)
    assert plan.parse_chunk(chunk) == plan.parse_chunk_by_line(chunk)


@settings(max_examples=300, deadline=None)
@given(st.lists(LOGPULSE_LINES, min_size=1, max_size=12), st.booleans(), st.booleans())
def test_logpulse_chunk_loop_equals_lines(lines: list[str], crlf: bool, final_newline: bool) -> None:
    chunk = chunk_of(lines, crlf, final_newline)
    assert logpulse.parse_chunk(chunk) == logpulse.parse_chunk_by_line(chunk)


def test_many_customers_keep_line_order_and_first_seen_order() -> None:
    lines = [nginx_line("10/Oct/2026:13:55:36 +0200", f"c{(i * 7919) % 300}", path=f"/p/{i}") for i in range(3000)]
    chunk = chunk_of(lines, crlf=False, final_newline=True)
    plan = nginx_plan()
    columns, by_line = plan.parse_chunk(chunk), plan.parse_chunk_by_line(chunk)
    assert columns == by_line
    assert list(columns.batches) == list(by_line.batches)  # the same customer order, too
    assert len(columns.batches) == 300


def test_a_time_beyond_int64_nanoseconds_is_kept_exactly_for_the_check_to_refuse() -> None:
    lines = [nginx_line("31/Dec/9999:23:59:59 -1400", "acme"), nginx_line("10/Oct/2026:13:55:36 +0200", "acme")]
    chunk = chunk_of(lines, crlf=False, final_newline=True)
    plan = nginx_plan()
    parsed = plan.parse_chunk(chunk)
    assert parsed == plan.parse_chunk_by_line(chunk)
    assert parsed.batches["acme"].times[0] > 2**63  # a Python int, not a wrapped int64
    validated = build_parser(
        FormatOptions(log_format="nginx", nginx_log_format=NGINX_FORMAT, customer_from="$http_x_customer_id")
    ).parse_chunk(chunk)
    assert [r.kind for r in validated.rejects] == ["time"]
    assert len(validated.batches["acme"]) == 1


def test_empty_and_newline_only_chunks() -> None:
    plan = nginx_plan()
    for data in (b"", b"\n", b"\n\n", b"\r\n"):
        chunk = Chunk("x", 1, 0, data)
        assert plan.parse_chunk(chunk) == plan.parse_chunk_by_line(chunk)
        assert logpulse.parse_chunk(chunk) == logpulse.parse_chunk_by_line(chunk)


NOW_NS = int(dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()) * 10**9

LOGPULSE_FLEET_LINES = st.one_of(
    st.builds(
        lambda day, s, c, st_, d: f"{day} 13:55:{s} {c} /api/v1/x {st_} {d}",
        st.sampled_from(["2026-12-06", "2100-01-01", "2024-02-30"]),  # valid, in the future, no such day
        two(0, 59),
        st.integers(0, 40).map(lambda i: f"c{i}"),
        st.sampled_from(["200", "404", "503", "600"]),
        st.sampled_from(["0.5", "0.0001", "99999"]),  # the last above MAX_DURATION_S
    ),
    st.sampled_from(["", "garbage"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(LOGPULSE_FLEET_LINES, min_size=1, max_size=60), st.sampled_from(["", "secret"]))
def test_a_chunk_of_many_customers_equals_its_lines_parsed_and_validated_one_by_one(
    lines: list[str], hash_key: str
) -> None:
    """The columns across customers (parse, validation, CUSTOMER_HASH_KEY) give what each line alone
    gives: the same rejects (reasons, kinds, offsets, in line order), and per customer the same
    requests in line order, customers in order of their first accepted line."""
    built = build_parser(FormatOptions(log_format="logpulse", customer_hash_key=hash_key))
    assert isinstance(built, ValidatedParser)
    # a reject's reason names the host's clock to the second: a clock of the test's, the same in every parse
    parser = ValidatedParser(built.inner, dataclasses.replace(built.check, now_ns=lambda: NOW_NS))
    chunk = chunk_of(lines, crlf=False, final_newline=True)
    whole = parser.parse_chunk(chunk)
    rejects, accepted, offset = [], [], chunk.offset
    for line in lines:
        alone = parser.parse_chunk(Chunk(chunk.path, chunk.file_key, offset, (line + "\n").encode()))
        rejects += alone.rejects
        accepted += [(b.customer_id, *r) for b in alone.batches.values() for r in zip(*columns_of(b), strict=True)]
        offset += len(line) + 1
    assert whole.rejects == rejects
    assert whole.lines == len(lines)
    expected = RequestColumns.of_lines(*(list(c) for c in zip(*accepted, strict=True))) if accepted else None
    assert whole.requests == (expected or RequestColumns())
    by_customer: dict[str, list[tuple[int, str, str, str]]] = {}
    for customer, *request in accepted:
        by_customer.setdefault(customer, []).append(tuple(request))  # type: ignore[arg-type]
    assert {c: list(zip(*columns_of(b), strict=True)) for c, b in whole.batches.items()} == by_customer
    assert list(whole.batches) == list(by_customer)


def columns_of(b: RequestBatch) -> tuple[list[int], list[str], list[str], list[str]]:
    return b.times, b.paths, b.statuses, b.durations
