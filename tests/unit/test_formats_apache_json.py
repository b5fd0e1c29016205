"""Apache and JSON-lines formats: real-world lines, settings errors, lines rendered from random values."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.formats.registry import FormatError, FormatOptions, build_parser
from logpulse.model import Chunk, ParsedChunk


def parse(fmt: str, lines: list[str], offset: int = 0, **opts: object) -> ParsedChunk:
    parser = build_parser(FormatOptions(log_format=fmt, **opts))  # type: ignore[arg-type]
    return parser.parse_chunk(Chunk("access.log", 3, offset, ("\n".join(lines) + "\n").encode()))


def rows(p: ParsedChunk) -> list[tuple[str, int, str, str, str]]:
    return sorted(
        (c, t // 10**9, path, s, d)
        for c, b in p.batches.items()
        for t, path, s, d in zip(b.times, b.paths, b.statuses, b.durations, strict=True)
    )


def utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())  # type: ignore[misc]


# -- Apache -------------------------------------------------------------------------------------------
APACHE_HEADER = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" "%{X-Customer-Id}i" %{ms}T'


def test_apache_default_format_real_world_lines() -> None:
    lines = [
        # combined + %D, IPv6, '-' size and referer, Apache's \" escape inside the user agent
        '2001:db8::7 - alice [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 - "-" '
        '"Mozilla/4.08 \\"compatible\\" \\\\o/" 1532',
        # non-ASCII byte escapes in the request
        '192.0.2.1 - bob [10/Oct/2026:13:55:37 -0700] "GET /na\\xc3\\xafve HTTP/1.1" 404 209 "-" "-" 20',
        # no authenticated user: no customer
        '192.0.2.1 - - [10/Oct/2026:13:55:38 -0700] "GET / HTTP/1.1" 200 209 "-" "-" 20',
    ]
    p = parse("apache", lines)
    t = utc(2026, 10, 10, 20, 55, 36)
    assert rows(p) == [
        ("alice", t, "/apache_pb.gif", "200", "0.001532"),
        ("bob", t + 1, "/naïve", "404", "0.000020"),
    ]
    [reject] = p.rejects
    assert reject.reason == "no customer: %u is '-'"


def test_apache_customer_header_and_ms() -> None:
    line = '10.1.1.1 - - [01/Feb/2026:00:00:00 +0000] "POST /v2/x HTTP/2.0" 503 12 "-" "ua" "tenant-9" 1250'
    assert rows(parse("apache", [line], apache_log_format=APACHE_HEADER, customer_from="%{x-customer-id}i")) == [
        ("tenant-9", utc(2026, 2, 1), "/v2/x", "503", "1.250")
    ]


def test_apache_config_quotes_and_nicknames() -> None:
    line = '10.1.1.1 - carol [01/Feb/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" 7'
    for setting in (
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\" %T" timed',
        "combined %T",
    ):
        assert rows(parse("apache", [line], apache_log_format=setting)) == [("carol", utc(2026, 2, 1), "/", "200", "7")]


@pytest.mark.parametrize(
    "opts, message",
    [
        ({"apache_log_format": "%h %u %t %>s %Q"}, "unknown directive '%Q'"),
        ({"apache_log_format": "%h %u %t %D"}, "no status"),
        ({"apache_log_format": "%h %u %t %>s"}, "no duration"),
        ({"apache_log_format": "%h %u %>s %D"}, "no time"),
        ({"customer_from": "%{X-Tenant}i"}, "CUSTOMER_FROM=%{X-Tenant}i is not in APACHE_LOG_FORMAT"),
        ({"duration_from": "%b"}, "not a duration"),
    ],
)
def test_apache_settings_errors(opts: dict[str, str], message: str) -> None:
    with pytest.raises(FormatError, match=None) as err:
        build_parser(FormatOptions(log_format="apache", **opts))  # type: ignore[arg-type]
    assert message in str(err.value)


def apache_escape(value: str) -> str:
    """What Apache writes for %r / %{..}i: \\" \\\\, C escapes for whitespace, \\xhh otherwise."""
    c = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}
    return "".join(c.get(b) or (f"\\x{b:02x}" if b < 32 or b > 126 else chr(b)) for b in value.encode("utf-8"))


segments = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="?/ "), min_size=1, max_size=10)
paths = st.lists(segments, max_size=4).map(lambda parts: "/" + "/".join(parts))
times = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2025, 12, 31))  # past: later times are refused
offsets = st.integers(-12 * 4, 14 * 4).map(lambda q: q * 15)


@settings(max_examples=100, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
    paths,
    st.integers(100, 599),
    st.integers(0, 86_400_000),  # ms: at most MAX_DURATION_S
    times,
    offsets,
    st.text(max_size=20),
)
def test_apache_rendered_line_parses_back(
    customer: str, path: str, status: int, ms: int, when: dt.datetime, offset_min: int, agent: str
) -> None:
    local = when.replace(microsecond=0, tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(minutes=offset_min)))
    line = (
        f'::1 - - [{local.strftime("%d/%b/%Y:%H:%M:%S %z")}] "GET {apache_escape(path)}?q=1 HTTP/1.1" {status} 5 '
        f'"-" "{apache_escape(agent)}" "{apache_escape(customer)}" {ms}'
    )
    p = parse(
        "apache", [line], apache_log_format=APACHE_HEADER, customer_from="%{X-Customer-Id}i", customer_hash_key="k"
    )
    assert not p.rejects or customer.strip() in ("", "-"), p.rejects
    if p.rejects:
        return
    [(stored, t, got_path, got_status, duration)] = rows(p)
    from logpulse.formats.registry import customer_id

    assert stored == customer_id(customer, "k")
    assert got_path == "".join(f"%{ord(c):02X}" if ord(c) < 32 or ord(c) == 127 else c for c in path)
    assert (t, got_status, duration) == (int(local.timestamp()), str(status), f"{ms // 1000}.{ms % 1000:03d}")


# -- JSON lines ---------------------------------------------------------------------------------------
def test_json_lines_nested_keys_units_and_time_forms() -> None:
    fields = "time=ts,customer=user.id,path=http.path,status=http.status,duration=latency_ms"
    lines = [
        json.dumps(
            {
                "ts": "2026-03-01T10:00:00.250+01:00",
                "user": {"id": "u-1"},
                "http": {"path": "/a?q=1", "status": 200},
                "latency_ms": 12.5,
            }
        ),
        json.dumps({"ts": 1772359200123, "user": {"id": 42}, "http": {"path": "/b", "status": "500"}, "latency_ms": 3}),
        json.dumps({"ts": 1772359200, "user": {"id": "u-1"}, "http": {"path": "/c", "status": 204}, "latency_ms": 1}),
        json.dumps({"ts": "2026-03-01T10:00:00Z", "user": {}, "http": {"path": "/d", "status": 200}, "latency_ms": 1}),
        '{"ts": "2026-03-01T10:00:00Z", "user": {"id": "u-1"}, ',
        json.dumps({"ts": "yesterday", "user": {"id": "u-1"}, "http": {"status": 200}, "latency_ms": 1}),
        json.dumps({"ts": "2026-03-01T10:00:00Z", "user": {"id": "u-1"}, "http": {"status": 200}, "latency_ms": -1}),
    ]
    p = parse("json", lines, json_fields=fields, duration_unit="ms")
    t = utc(2026, 3, 1, 10)
    assert rows(p) == [
        ("42", t, "/b", "500", "0.003"),
        ("u-1", t - 3600, "/a", "200", "0.0125"),
        ("u-1", t, "/c", "204", "0.001"),
    ]
    reasons = [r.reason for r in p.rejects]
    assert reasons[0] == "no customer: user.id is missing"
    assert reasons[1].startswith("not JSON")
    assert reasons[2].startswith("invalid time 'yesterday' in ts")
    assert reasons[3].startswith("no duration")
    assert p.rejects[0].offset == sum(len(x) + 1 for x in lines[:3])


def test_json_fraction_of_rfc3339_kept() -> None:
    line = json.dumps(
        {"time": "2026-03-01T10:00:00.250Z", "customer": "c", "path": "/", "status": 200, "duration": 0.1}
    )
    [b] = parse("json", [line]).batches.values()
    assert 250_000_000 <= b.times[0] % 10**9 < 251_000_000


@pytest.mark.parametrize(
    "opts, message",
    [
        ({"json_fields": "time=t,custmer=c,status=s,duration=d"}, "did you mean customer?"),
        ({"json_fields": "time=t,customer=c,duration=d"}, "no status=KEY"),
        ({"json_fields": "time=t,customer=c,status=s"}, "no duration=KEY"),
        ({"json_fields": "time=t,status=s,duration=d"}, "no customer=KEY"),
    ],
)
def test_json_settings_errors(opts: dict[str, str], message: str) -> None:
    with pytest.raises(FormatError) as err:
        build_parser(FormatOptions(log_format="json", **opts))  # type: ignore[arg-type]
    assert message in str(err.value)


@settings(max_examples=100, deadline=None)
@given(
    st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True).filter(lambda c: c != "-"),
    paths,
    st.integers(100, 599),
    st.integers(0, 10**7),
    times,
)
def test_json_rendered_line_parses_back(customer: str, path: str, status: int, us: int, when: dt.datetime) -> None:
    stamp = when.replace(tzinfo=dt.UTC)
    line = json.dumps(
        {"time": stamp.isoformat(), "customer": customer, "path": path, "status": status, "duration": us},
        ensure_ascii=False,
    )
    p = parse("json", [line], duration_unit="us")
    assert not p.rejects, (line, p.rejects)
    [(c, t, got_path, s, d)] = rows(p)
    stored_path = "".join(f"%{ord(c):02X}" if ord(c) < 32 or ord(c) == 127 else c for c in path)
    assert (c, t, got_path, s) == (customer, int(stamp.timestamp()), stored_path, str(status))
    assert d == f"{us // 10**6}.{us % 10**6:06d}"


def test_logpulse_format_unchanged_and_hashable() -> None:
    line = "2024-09-29 01:00:00 cust_1 /api/v1/resource1?x=1 200 0.532"
    assert rows(parse("logpulse", [line])) == [("cust_1", utc(2024, 9, 29, 1), "/api/v1/resource1?x=1", "200", "0.532")]
    from logpulse.formats.registry import customer_id

    assert rows(parse("logpulse", [line], customer_hash_key="k"))[0][0] == customer_id("cust_1", "k")
    with pytest.raises(FormatError, match="CUSTOMER_FROM is set but LOG_FORMAT=logpulse"):
        build_parser(FormatOptions(customer_from="$remote_user"))


@pytest.mark.parametrize(
    ("raw_time", "why"),
    [
        (None, "null"),
        ([1772359200], "a list"),
        ({"s": 1}, "an object"),
        (True, "a bool"),
        ("١٧٧٢٣٥٩٢٠٠", "Arabic-Indic digits"),
        ("1772359200²", "a superscript"),
        ("1772359200\n", "a final newline"),
        (float("inf"), "Infinity"),
    ],
)
def test_json_time_that_is_no_time_is_a_reject_not_an_exception(raw_time: object, why: str) -> None:
    line = json.dumps({"time": raw_time, "customer": "c", "path": "/", "status": 200, "duration": 0.1})
    p = parse(
        "json", [line, json.dumps({"time": 1772359200, "customer": "c", "path": "/", "status": 200, "duration": 1})]
    )
    assert [r.reason.split(" ", 2)[:2] for r in p.rejects] == [["invalid", "time"]], why
    assert rows(p) == [("c", utc(2026, 3, 1, 10), "/", "200", "1")]
