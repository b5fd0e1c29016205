"""nginx format: real-world lines, the user's log_format forms, and lines rendered from random values."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.formats.registry import FormatError, FormatOptions, build_parser, customer_id
from logpulse.model import Chunk, ParsedChunk

HEADER_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" cust="$http_x_customer_id" rt=$request_time urt="$upstream_response_time"'
)


def parse(lines: list[str], offset: int = 0, **opts: object) -> ParsedChunk:
    parser = build_parser(FormatOptions(log_format="nginx", **opts))  # type: ignore[arg-type]
    return parser.parse_chunk(Chunk("access.log", 11, offset, ("\n".join(lines) + "\n").encode()))


def only(p: ParsedChunk) -> tuple[str, int, str, str, str]:
    """(customer, time ns, path, status, duration) of the single accepted line."""
    assert not p.rejects, p.rejects
    [(customer, b)] = p.batches.items()
    assert len(b) == 1
    return customer, b.times[0], b.paths[0], b.statuses[0], b.durations[0]


def utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())  # type: ignore[misc]


def test_combined_with_request_time_default() -> None:
    line = (
        '203.0.113.9 - alice [10/Oct/2026:13:55:36 +0200] "GET /api/v1/orders/7?token=s3cret HTTP/1.1" 200 2326 '
        '"https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 0.532'
    )
    customer, t, path, status, duration = only(parse([line]))
    assert (customer, path, status, duration) == ("alice", "/api/v1/orders/7", "200", "0.532")
    assert t // 10**9 == utc(2026, 10, 10, 11, 55, 36)  # +0200 -> UTC


def test_keep_query_string() -> None:
    line = '::1 - bob [10/Oct/2026:13:55:36 -0700] "GET /a?x=1&y=2 HTTP/2.0" 204 0 "-" "-" 0.001'
    _, t, path, _, _ = only(parse([line], keep_query_string=True))
    assert path == "/a?x=1&y=2"
    assert t // 10**9 == utc(2026, 10, 10, 20, 55, 36)


REAL_WORLD = [
    # IPv6 client, escaped quotes in the user agent, '-' referer
    (
        '2001:db8:85a3::8a2e:370:7334 - - [01/Jan/2026:00:00:01 +0000] "GET /v1/x HTTP/1.1" 200 5 "-" '
        '"curl \\x22quoted\\x22 \\x5C" cust="acme-1" rt=0.012 urt="0.010"',
        ("acme-1", "/v1/x", "200", "0.012"),
    ),
    # non-ASCII bytes escaped by nginx (UTF-8 é) in the path; 499 = client closed
    (
        '198.51.100.7 - - [01/Jan/2026:00:00:02 +0000] "POST /caf\\xC3\\xA9/menu HTTP/1.1" 499 0 "-" "ua" '
        'cust="acme-1" rt=1.500 urt="-"',
        ("acme-1", "/café/menu", "499", "1.500"),
    ),
    # several upstreams tried: the request time is the duration; the customer from the header
    (
        '10.0.0.1 - - [01/Jan/2026:00:00:03 +0000] "GET /retry HTTP/1.1" 502 157 "-" "ua" cust="big.co" '
        'rt=0.031 urt="0.010, 0.020"',
        ("big.co", "/retry", "502", "0.031"),
    ),
    # a request line that is not METHOD PATH PROTOCOL still counts for its customer
    (
        '10.0.0.2 - - [01/Jan/2026:00:00:04 +0000] "-" 400 0 "-" "-" cust="acme-1" rt=0.000 urt="-"',
        ("acme-1", "-", "400", "0.000"),
    ),
    # an escaped control character in the path stays out of the stored text
    (
        '10.0.0.3 - - [01/Jan/2026:00:00:05 +0000] "GET /a\\x0Ab HTTP/1.0" 404 0 "-" "-" cust="acme-1" '
        'rt=0.002 urt="-"',
        ("acme-1", "/a%0Ab", "404", "0.002"),
    ),
]


@pytest.mark.parametrize("line, expected", REAL_WORLD)
def test_real_world_lines(line: str, expected: tuple[str, str, str, str]) -> None:
    customer, _, path, status, duration = only(
        parse([line], nginx_log_format=HEADER_FORMAT, customer_from="$http_x_customer_id")
    )
    assert (customer, path, status, duration) == expected


def test_upstream_time_as_duration_sums_the_tries_and_refuses_dash() -> None:
    lines = [line for line, _ in REAL_WORLD[:3]]
    p = parse(
        lines,
        nginx_log_format=HEADER_FORMAT,
        customer_from="$http_x_customer_id",
        duration_from="$upstream_response_time",
    )
    assert sorted(d for b in p.batches.values() for d in b.durations) == ["0.010", "0.030"]
    [reject] = p.rejects
    assert reject.reason.startswith("no duration") and "$upstream_response_time" in reject.reason
    assert reject.offset == len(lines[0]) + 1


def test_no_customer_is_rejected_with_reason_never_made_up() -> None:
    lines = [
        '10.0.0.1 - - [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "-" cust="-" rt=0.001 urt="-"',
        '10.0.0.1 - - [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "-" cust="" rt=0.001 urt="-"',
    ]
    p = parse(lines, 100, nginx_log_format=HEADER_FORMAT, customer_from="$http_x_customer_id")
    assert p.batches == {} and p.lines == 2
    assert [r.reason.split(":")[0] for r in p.rejects] == ["no customer", "no customer"]
    assert [r.offset for r in p.rejects] == [100, 100 + len(lines[0]) + 1]


def test_customer_pattern_on_the_request_uri_and_hash() -> None:
    fmt = '$remote_addr [$time_local] "$request_uri" $status $request_time'
    lines = [
        '10.0.0.1 [01/Jan/2026:00:00:01 +0000] "/v1/accounts/jane@example.com/orders?page=2" 200 0.100',
        '10.0.0.1 [01/Jan/2026:00:00:02 +0000] "/health" 200 0.001',
    ]
    opts = {
        "nginx_log_format": fmt,
        "customer_from": "$request_uri",
        "customer_pattern": r"^/v1/accounts/(?P<customer>[^/]+)/",
    }
    p = parse(lines, **opts, customer_hash_key="k1")
    hashed = customer_id("jane@example.com", "k1")
    assert len(hashed) == 16 and set(p.batches) == {hashed}
    assert p.batches[hashed].paths == ["/v1/accounts/jane@example.com/orders"]
    assert "does not match CUSTOMER_PATTERN" in p.rejects[0].reason
    # without the key, an e-mail is no valid tag: refused, with the way out named
    p = parse(lines[:1], **opts)
    assert "CUSTOMER_HASH_KEY" in p.rejects[0].reason


def test_escape_json_format() -> None:
    directive = (
        'log_format api escape=json \'{"t":"$time_iso8601","u":"$remote_user",\' '
        '\'"r":"$request","s":$status,"d":$request_time,"ua":"$http_user_agent"}\';'
    )
    line = (
        '{"t":"2026-01-01T01:00:00+01:00","u":"acme","r":"GET /caf\\u00e9?q=\\"x\\" HTTP/1.1","s":201,'
        '"d":0.250,"ua":"say \\"hi\\""}'
    )
    customer, t, path, status, duration = only(parse([line], nginx_log_format=directive))
    assert (customer, path, status, duration) == ("acme", "/café", "201", "0.250")
    assert t // 10**9 == utc(2026, 1, 1, 0, 0, 0)


def test_msec_time_keeps_milliseconds() -> None:
    fmt = "$msec $remote_user $status $request_time"
    _, t, _, _, _ = only(parse(["1767225600.123 acme 200 0.004"], nginx_log_format=fmt))
    assert 1767225600_123_000_000 <= t < 1767225600_124_000_000


def test_point_identity_is_deterministic_and_unique() -> None:
    line = '1.2.3.4 - acme [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.001'
    a = parse([line] * 3, 500).batches["acme"].times
    assert len(set(a)) == 3 and parse([line] * 3, 500).batches["acme"].times == a


def test_malformed_lines_say_where() -> None:
    good = '1.2.3.4 - acme [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.001'
    bad = [
        ('1.2.3.4 - acme [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "-"', "$request_time"),
        ('1.2.3.4 - acme [32/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.001', "invalid time"),
        ('1.2.3.4 - acme [01/Jan/2026:00:00:01 +0000] "GET / HTTP/1.1" 20 1 "-" "-" 0.001', "$status"),
        ("", "empty line"),
    ]
    p = parse([good] + [b for b, _ in bad] + [good])
    assert len(p.batches["acme"]) == 2 and p.lines == 6
    for reject, (line, reason) in zip(p.rejects, bad, strict=True):
        assert reason in reject.reason and reject.line == line


@pytest.mark.parametrize(
    "opts, message",
    [
        (
            {"nginx_log_format": "$remote_addr [$time_local] $stauts $request_time"},
            "unknown variable $stauts; did you mean $status?",
        ),
        ({"nginx_log_format": "$remote_user [$time_local] $request_time"}, "no $status"),
        (
            {"nginx_log_format": "$remote_user [$time_local] $status"},
            "DURATION_FROM=$request_time is not in NGINX_LOG_FORMAT",
        ),
        ({"nginx_log_format": "$remote_user $status $request_time"}, "no time"),
        ({"customer_from": "$http_x_customer"}, "CUSTOMER_FROM=$http_x_customer is not in NGINX_LOG_FORMAT"),
        ({"customer_pattern": "^/v1/(?P<cust>[^/]+)"}, "CUSTOMER_PATTERN has no named group 'customer'"),
        ({"customer_pattern": "^/v1/(["}, "CUSTOMER_PATTERN is not a valid regular expression"),
        ({"nginx_log_format": "escape=xml $remote_user"}, "unknown escape=xml"),
    ],
)
def test_settings_errors_are_one_clear_line(opts: dict[str, str], message: str) -> None:
    with pytest.raises(FormatError) as err:
        build_parser(FormatOptions(log_format="nginx", **opts))  # type: ignore[arg-type]
    assert message in str(err.value) and "\n" not in str(err.value)


def test_custom_variables_are_declared() -> None:
    fmt = "$remote_user [$time_local] $status $request_time $tenant_from_map"
    with pytest.raises(FormatError, match="NGINX_CUSTOM_VARIABLES"):
        build_parser(FormatOptions(log_format="nginx", nginx_log_format=fmt))
    build_parser(FormatOptions(log_format="nginx", nginx_log_format=fmt, nginx_custom_variables=("tenant_from_map",)))


# -- property: a line rendered by nginx's rules from random values parses back to them ----------------
def nginx_escape(value: str) -> str:
    """What nginx writes for a variable with escape=default."""
    out = []
    for byte in value.encode("utf-8"):
        out.append(f"\\x{byte:02X}" if byte in (0x22, 0x5C) or byte < 32 or byte > 126 else chr(byte))
    return "".join(out)


customers = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True).filter(lambda c: c != "-")  # "-" is no customer
segments = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="?/ "), min_size=1, max_size=12)
paths = st.lists(segments, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))
queries = st.one_of(st.just(""), st.from_regex(r"\?[a-z]=[a-z0-9]{0,5}", fullmatch=True))
agents = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15)
times = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2025, 12, 31))  # past: later times are refused


@settings(max_examples=150, deadline=None)
@given(customers, paths, queries, st.integers(100, 599), st.integers(0, 600_000), times, offsets, agents)
def test_rendered_line_parses_back(
    customer: str, path: str, query: str, status: int, ms: int, when: dt.datetime, offset_min: int, agent: str
) -> None:
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    local = when.replace(microsecond=0, tzinfo=dt.UTC).astimezone(tz)
    line = (
        f"2001:db8::1 - - [{local.strftime('%d/%b/%Y:%H:%M:%S %z')}] "
        f'"GET {nginx_escape(path + query)} HTTP/1.1" {status} 0 "-" "{nginx_escape(agent)}" '
        f'cust="{customer}" rt={ms // 1000}.{ms % 1000:03d} urt="-"'
    )
    got_customer, t, got_path, got_status, duration = only(
        parse([line], nginx_log_format=HEADER_FORMAT, customer_from="$http_x_customer_id")
    )
    stored_path = "".join(f"%{ord(c):02X}" if ord(c) < 32 or ord(c) == 127 else c for c in path)
    assert (got_customer, got_path, got_status) == (customer, stored_path, str(status))
    assert float(duration) == ms / 1000
    assert t // 10**9 == int(local.timestamp())


def test_directive_pasted_from_nginx_conf() -> None:
    conf = """log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" $request_time';
    access_log /var/log/nginx/access.log main;
"""
    line = '1.2.3.4 - acme [01/Jan/2026:00:00:01 +0000] "GET /x HTTP/1.1" 200 1 "-" "a; b" 0.001'
    assert only(parse([line], nginx_log_format=conf))[2] == "/x"


def test_semicolons_in_a_bare_format_are_literal() -> None:
    fmt = "$time_iso8601;$remote_user;$status;$request_time;$request_uri"
    line = "2026-01-01T00:00:01+00:00;acme;200;0.001;/x?y=1"
    assert only(parse([line], nginx_log_format=fmt))[2:] == ("/x", "200", "0.001")
