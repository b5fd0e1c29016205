"""Any text, in every format: a line becomes points a real influxd accepts, or a reject with a reason.

Lines are drawn from each format's template with every field replaced, sometimes, by hostile text
(Unicode digits, superscripts, nan/inf/-1, years 1000/2100/9999, control characters, quotes,
backslashes, commas, spaces, huge numbers) or by arbitrary text; whole lines of arbitrary text too.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpulse.formats.registry import FormatOptions, build_parser
from logpulse.formats.validate import RequestCheck, ValidatedParser
from logpulse.model import Chunk, ScoredBatch
from logpulse.storage.influx import InfluxWriter
from logpulse.storage.points import request_lines

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
HOSTILE = [
    "2٠٠",
    "2²²",
    "٣",
    "nan",
    "inf",
    "-inf",
    "-1",
    "1e309",
    "1_000",
    "99999999999999999999",
    "0x10",
    "",
    "-",
    " ",
    '"',
    "\\",
    ",",
    "=",
    "a b",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\ud800",
    "\\x0a",
    "\\n",
    "\\u0000",
    "1000-01-01",
    "9999-12-31",
    "2100-01-01",
]


def hostile(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(valid, valid, st.sampled_from(HOSTILE), st.text(max_size=12))


times = st.datetimes(dt.datetime(1969, 12, 31), dt.datetime(2027, 1, 1)).map(lambda d: d.replace(tzinfo=dt.UTC))
customers = hostile(st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True))
paths = hostile(st.from_regex(r"/[A-Za-z0-9/._\-]{0,30}", fullmatch=True))
statuses = hostile(st.integers(100, 599).map(str))
seconds = hostile(st.decimals(0, 100000, places=3).map(str))


@st.composite
def logpulse_line(draw: st.DrawFn) -> str:
    when = draw(times)
    date = draw(hostile(st.just(when.strftime("%Y-%m-%d"))))
    clock = draw(hostile(st.just(when.strftime("%H:%M:%S"))))
    return f"{date} {clock} {draw(customers)} {draw(paths)} {draw(statuses)} {draw(seconds)}"


@st.composite
def nginx_line(draw: st.DrawFn) -> str:
    when = draw(hostile(st.just(draw(times).strftime("%d/%b/%Y:%H:%M:%S +0000"))))
    return (
        f'127.0.0.1 - {draw(customers)} [{when}] "GET {draw(paths)} HTTP/1.1" {draw(statuses)} 12 '
        f'"-" "{draw(st.text(max_size=8))}" {draw(seconds)}'
    )


@st.composite
def apache_line(draw: st.DrawFn) -> str:
    when = draw(hostile(st.just(draw(times).strftime("%d/%b/%Y:%H:%M:%S +0000"))))
    micros = draw(hostile(st.integers(0, 10**12).map(str)))
    return (
        f'127.0.0.1 - {draw(customers)} [{when}] "GET {draw(paths)} HTTP/1.1" {draw(statuses)} 12 '
        f'"-" "{draw(st.text(max_size=8))}" {micros}'
    )


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(HOSTILE),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def json_line(draw: st.DrawFn) -> str:
    obj = {
        "time": draw(st.one_of(times.map(lambda d: d.isoformat()), json_values)),
        "customer": draw(st.one_of(customers, json_values)),
        "path": draw(st.one_of(paths, json_values)),
        "status": draw(st.one_of(st.integers(100, 599), json_values)),
        "duration": draw(st.one_of(st.floats(0, 100000), json_values)),
    }
    return json.dumps(obj)


LINES = {"logpulse": logpulse_line(), "nginx": nginx_line(), "apache": apache_line(), "json": json_line()}


@pytest.mark.parametrize("fmt", sorted(LINES))
def test_any_line_becomes_accepted_points_or_a_reject(fmt: str, influx_writer: InfluxWriter) -> None:
    built = build_parser(FormatOptions(log_format=fmt))
    assert isinstance(built, ValidatedParser)
    parser = ValidatedParser(built.inner, RequestCheck(now_ns=lambda: int(NOW.timestamp()) * 10**9))
    seen = {"points": 0, "rejects": 0}

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.one_of(LINES[fmt], LINES[fmt], st.text(max_size=60)), min_size=1, max_size=8))
    def check(lines: list[str]) -> None:
        text = "".join(line.replace("\n", " ") + "\n" for line in lines)
        data = text.encode("utf-8", "surrogatepass")
        parsed = parser.parse_chunk(Chunk("hostile.log", 5, 0, data))
        points = [p for b in parsed.batches.values() for p in request_lines(ScoredBatch(b))]
        assert parsed.lines == len(lines)
        assert len(points) + len(parsed.rejects) == len(lines)
        assert all(r.reason for r in parsed.rejects)
        if points:
            influx_writer.write(points)  # raises InfluxRefused if influxd refuses any of them
        seen["points"] += len(points)
        seen["rejects"] += len(parsed.rejects)

    check()
    assert seen["points"] > 0 and seen["rejects"] > 0  # both outcomes were exercised
