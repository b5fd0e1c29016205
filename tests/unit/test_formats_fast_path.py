"""The chunk fast path gives exactly what the per-line path gives, for generated formats and lines.

A chunk of ASCII lines is split into columns by one expression in which the path has a stricter
pattern, and its values are converted once per distinct value or as a whole column; a line it
refuses (or whose values a converter refuses) and every line of a chunk with non-ASCII text go
through the general expression one line at a time. Whichever way
a line goes, it must be stored the same: these properties draw formats (fields in any order, with
literals or nothing between them), lines (plain, escaped, hostile, non-ASCII) and their positions in
a chunk, and compare `parse_chunk` with `parse_chunk_by_line` and with `parse_line` (check-format).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logpulse.formats.plan import RegexPlan
from logpulse.formats.registry import FormatError, FormatOptions, build_parser
from logpulse.formats.validate import ValidatedParser
from logpulse.model import Chunk, ParsedChunk


def mostly(plain: list[str], hostile: list[str]) -> st.SearchStrategy[str]:
    """Plain values seven times out of eight, else hostile ones: most lines are stored, so a customer
    is known early in a chunk and the fast path takes its next lines, plain or hostile."""
    return st.integers(0, 7).flatmap(lambda n: st.sampled_from(hostile if n == 7 else plain))


ASCII_AND_NOT = st.sampled_from(["", "caf\u00e9", "\u00fc", "x"])
CUSTOMERS = mostly(["acme", "bob", "a.b_c-9"], ["-", '""', "", "caf\u00e9", "a\\x22b", "x" * 70, "a b"])
PATHS = mostly(
    ["/", "/v1/orders", "/v1/orders/7", "/a-b_c.d", "/a%20b"],
    ["/caf\u00e9", "/t\\xc3\\xa9st", "/" + "p" * 4100, "", "/a\\x22b", "/a\\\\b", "/a\\x01", "*", "x"],
)
QUERIES = mostly(["", "?x=1", "?x=1&y=2"], ["?q=caf\u00e9", "?a=\\x22", "?", "?a\\\\b", "?\\x16"])
METHODS = mostly(["GET", "POST"], ["OPTIONS", "get", "M-SEARCH", "Cookie:", "CONNECT"])
PROTOCOLS = mostly([" HTTP/1.1", " HTTP/2.0"], [" HTTP/1", "", " HTTP/1.1 HTTP/1.1", " FTP/1"])
JUNK_REQUESTS = st.sampled_from(
    ["", "-", "Gh0st\\xad\\x00", "\\x16\\x03\\x01\\x02", "Cookie: mstshash=Administr", "OPTIONS * HTTP/1.1"]
)
ADDRESSES = mostly(["10.0.0.1", "1:2:3::6:7:8", "::1"], ["fe80::1%eth0", "unix:", "-", "a b"])
PORTS = mostly(["44782", "80"], ["-", "", "x"])
TEXT = mostly(
    ["-", "curl/8.0", "Mozilla/5.0 (X11; Linux)"], ["", 'a \\"quoted\\" b', "\u00e9t\u00e9", "a\\\\", "a|b,c"]
)
STATUSES = mostly(["200", "404", "503"], ["000", "600", "099", "20x"])


@st.composite
def requests(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 4)) == 4:
        return draw(JUNK_REQUESTS)
    return f"{draw(METHODS)} {draw(PATHS)}{draw(QUERIES)}{draw(PROTOCOLS)}"


def seconds(draw: st.DrawFn) -> str:
    return draw(mostly(["0.532", "1.000", "0.001"], ["-", "12.5", "0.0100", ""]))


# A field: (text in the format, how to draw its value). Formats are these in any order.
LOCAL_TIMES = st.sampled_from(
    ["10/Oct/2026:13:55:36 +0200", "10/Oct/2026:13:55:37 +0000", "31/Feb/2026:00:00:00 +0000"]
)
NGINX_TIMES = [
    ("[$time_local]", lambda d: f"[{d(LOCAL_TIMES)}]"),
    ("$time_iso8601", lambda d: d(st.sampled_from(["2026-10-10T13:55:36+02:00", "2026-10-10T13:55:36+00:00"]))),
    ("$msec", lambda d: d(st.sampled_from(["1791640536.123", "1791640537.000"]))),
]
NGINX_PATHS = [
    ('"$request"', lambda d: f'"{d(requests())}"'),
    ('"$uri$is_args$args"', lambda d: f'"{d(PATHS)}{d(QUERIES) or "-"}"'),
    ("$request_uri", lambda d: d(PATHS) + d(QUERIES)),
    ("$uri", lambda d: d(PATHS) + d(QUERIES) if d(st.integers(0, 5)) == 5 else d(PATHS)),
]
NGINX_OTHERS = [
    ("$remote_addr:$remote_port", lambda d: f"{d(ADDRESSES)}:{d(PORTS)}"),
    ("$remote_addr", lambda d: d(ADDRESSES)),
    ('"$http_user_agent"', lambda d: f'"{d(TEXT)}"'),
    ("$body_bytes_sent", lambda d: d(st.sampled_from(["0", "512", "-"]))),
    ("up=$upstream_response_time", lambda d: "up=" + d(st.sampled_from(["0.010", "0.010, 0.020", "-"]))),
]
APACHE_TIMES = [
    ("%t", lambda d: f"[{d(st.sampled_from(['10/Oct/2026:13:55:36 +0200', '10/Oct/2026:13:55:37 +0000']))}]"),
    ("%{msec}t", lambda d: d(st.sampled_from(["1791640536123", "1791640537000"]))),
]
APACHE_PATHS = [
    ('"%r"', lambda d: f'"{d(requests())}"'),
    ('"%U%q"', lambda d: f'"{d(PATHS)}{d(QUERIES)}"'),
    ("%U", lambda d: d(PATHS) + d(QUERIES) if d(st.integers(0, 5)) == 5 else d(PATHS)),
]
APACHE_OTHERS = [
    ("%a:%{remote}p", lambda d: f"{d(ADDRESSES)}:{d(PORTS)}"),
    ("%h", lambda d: d(ADDRESSES)),
    ('"%{User-Agent}i"', lambda d: f'"{d(TEXT)}"'),
    ("%b", lambda d: d(st.sampled_from(["0", "512", "-"]))),
]
SEPARATORS = st.sampled_from([" ", " ", " - ", " | ", "\t", ","])


@st.composite
def formats(draw: st.DrawFn, kind: str) -> tuple[str, list[Any], dict[str, str]]:
    """(format string, its fields in order, settings) of a generated nginx or Apache format."""
    if kind == "nginx":
        customer = ("$remote_user", lambda d: d(CUSTOMERS))
        duration = ("$request_time", seconds)
        fields = [draw(st.sampled_from(NGINX_TIMES)), ("$status", lambda d: d(STATUSES)), customer, duration]
        fields += [draw(st.sampled_from(NGINX_PATHS)), *draw(st.lists(st.sampled_from(NGINX_OTHERS), max_size=2))]
    else:
        customer = ("%u", lambda d: d(CUSTOMERS))
        duration = ("%D", lambda d: d(st.sampled_from(["532000", "1042", "0", "-", "12"])))
        fields = [draw(st.sampled_from(APACHE_TIMES)), ("%>s", lambda d: d(STATUSES)), customer, duration]
        fields += [draw(st.sampled_from(APACHE_PATHS)), *draw(st.lists(st.sampled_from(APACHE_OTHERS), max_size=2))]
    fields = draw(st.permutations(fields))
    seps = [draw(SEPARATORS) for _ in fields[1:]]
    fmt = fields[0][0] + "".join(s + f[0] for s, f in zip(seps, fields[1:], strict=True))
    opts = {"keep_query_string": draw(st.booleans()), "customer_hash_key": draw(st.sampled_from(["", "k"]))}
    return fmt, [(f, s) for f, s in zip(fields, ["", *seps], strict=True)], opts


@st.composite
def chunks(draw: st.DrawFn, kind: str) -> tuple[RegexPlan, list[str]]:
    fmt, fields, opts = draw(formats(kind))
    setting = "nginx_log_format" if kind == "nginx" else "apache_log_format"
    try:
        built = build_parser(FormatOptions(log_format=kind, **{setting: fmt}, **opts))  # type: ignore[arg-type]
    except FormatError:
        assume(False)
        raise
    assert isinstance(built, ValidatedParser)
    parser = built.inner  # the format's own paths are compared here, before formats.validate
    assert isinstance(parser, RegexPlan)
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 9)) == 9:
            lines.append(draw(st.sampled_from(["", "garbage", "\u00e9", " "])))
            continue
        line = "".join(sep + render(draw) for (_, render), sep in fields)
        if draw(st.integers(0, 4)) == 4:  # the same line again: a customer seen before in the chunk
            lines += [line, line]
        lines.append(line)
    return parser, lines


def both_ways(parser: RegexPlan, lines: list[str], offset: int) -> tuple[ParsedChunk, ParsedChunk]:
    chunk = Chunk("access.log", 17, offset, ("\n".join(lines) + "\n").encode())
    return parser.parse_chunk(chunk), parser.parse_chunk_by_line(chunk)


def assert_same_each_line(parser: RegexPlan, lines: list[str]) -> None:
    fast, by_line = both_ways(parser, lines, 1000)
    assert fast == by_line
    ascii_only = [ln for ln in lines if ln.isascii()]
    if ascii_only:  # the same lines without their non-ASCII neighbours: the fast path proper
        fast, by_line = both_ways(parser, ascii_only, 0)
        assert fast == by_line
    for line in lines:  # check-format shows each line as a chunk stores it
        record = parser.parse_line(line)
        alone = parser.parse_chunk_by_line(Chunk("x", 0, 0, (line + "\n").encode()))
        stored = [(c, b.paths[0], b.statuses[0], b.durations[0]) for c, b in alone.batches.items()]
        if record.stored is None:
            assert not stored and [r.reason for r in alone.rejects] == [record.reason]
        else:
            st_ = record.stored
            assert stored == [(st_.customer_id, st_.path, st_.status, st_.duration_s)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(chunks("nginx"))
def test_nginx_fast_path_equals_the_per_line_path(case: tuple[RegexPlan, list[str]]) -> None:
    assert_same_each_line(*case)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(chunks("apache"))
def test_apache_fast_path_equals_the_per_line_path(case: tuple[RegexPlan, list[str]]) -> None:
    assert_same_each_line(*case)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_non_ascii_neighbours_do_not_change_a_line(data: st.DataObject) -> None:
    parser, lines = data.draw(chunks("nginx"))
    neighbour = data.draw(ASCII_AND_NOT)
    plain, _ = both_ways(parser, lines, 0)
    with_neighbour, _ = both_ways(parser, [*lines, f"junk {neighbour}"], 0)
    assert with_neighbour.batches == plain.batches
    assert with_neighbour.rejects[: len(plain.rejects)] == plain.rejects
