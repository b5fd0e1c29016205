"""Each line means what the server wrote, wherever it falls: in a chunk, alone, in check-format.

The cases are lines that real servers write and that a parser reading "up to the next literal
character" or a second, faster expression would store differently."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from logpulse import config
from logpulse.cli import app
from logpulse.formats.registry import FormatError, FormatOptions, LineParser, build_parser, customer_id
from logpulse.model import Chunk, ParsedChunk

APACHE_WSGI = (
    '%t %s %a:%{remote}p <-> %A:%p "%m" "%U%q" "%f" %P:%{tid}P "%R" %D'  # jwodder/apachelogs test/test_parse.py
)
NGINX_ARGS = '$remote_addr - $remote_user [$time_local] "$uri$is_args$args" $status $request_time'


def apache(fmt: str, **opts: str) -> LineParser:
    return build_parser(FormatOptions(log_format="apache", apache_log_format=fmt, **opts))  # type: ignore[arg-type]


def nginx(fmt: str, **opts: str) -> LineParser:
    return build_parser(FormatOptions(log_format="nginx", nginx_log_format=fmt, **opts))  # type: ignore[arg-type]


def chunk(parser: LineParser, lines: list[str]) -> ParsedChunk:
    return parser.parse_chunk(Chunk("access.log", 5, 0, ("\n".join(lines) + "\n").encode()))


def paths(p: ParsedChunk) -> list[str]:
    return [path for b in p.batches.values() for path in b.paths]


def wsgi_line(client: str, uri: str, user_port: str = "44782") -> str:
    return (
        f'[05/May/2019:20:49:14 +0000] 403 {client}:{user_port} <-> 172.21.0.2:80 "GET" "{uri}" '
        '"/usr/local/app/run.wsgi" 16:140168282543872 "wsgi-script" 1042'
    )


# -- 1. a path field directly followed by another field ------------------------------------------------
@pytest.mark.parametrize("position", ["first", "later"])
def test_apache_uri_then_query_is_the_path_in_every_position_of_a_chunk(position: str) -> None:
    parser = apache(APACHE_WSGI, customer_from="%a")
    lines = [wsgi_line("172.21.0.1", "/wsgi/test?q=foo")] * 3
    p = chunk(parser, lines)
    assert paths(p) == ["/wsgi/test"] * 3, p.rejects
    one = parser.parse_line(lines[0 if position == "first" else 2])
    assert one.stored is not None and one.stored.path == "/wsgi/test"


def test_apache_uri_with_an_escaped_byte_is_kept_whole() -> None:
    parser = apache(APACHE_WSGI, customer_from="%a")
    lines = [wsgi_line("172.21.0.1", "/plain"), wsgi_line("172.21.0.1", "/wsgi/t\\xc3\\xa9st")]
    assert paths(chunk(parser, lines)) == ["/plain", "/wsgi/tést"]


def test_nginx_uri_is_args_args_in_a_chunk_with_non_ascii_text() -> None:
    parser = nginx(NGINX_ARGS)
    lines = [
        '1.2.3.4 - acme [10/Oct/2026:13:55:36 +0000] "/v1/orders?id=1" 200 0.010',
        '1.2.3.4 - acme [10/Oct/2026:13:55:37 +0000] "/v1/caf\u00e9?x=1" 200 0.020',
    ]
    assert paths(chunk(parser, lines)) == ["/v1/orders", "/v1/café"]
    first = parser.parse_line(lines[0])
    assert first.stored is not None and first.stored.path == "/v1/orders"
    assert first.fields["uri"] == "/v1/orders" and first.fields["args"] == "id=1"


def test_nginx_writes_a_missing_args_as_dash() -> None:
    """Lines written by nginx 1.22 with `$uri$is_args$args` (a request without a query gives `/foo-`)."""
    parser = nginx(NGINX_ARGS)
    lines = [
        '127.0.0.1 - acme [06/Dec/2026:19:41:39 +0000] "/foo-" 200 0.000',
        '127.0.0.1 - acme [06/Dec/2026:19:41:39 +0000] "/foo?x=1" 200 0.000',
        '127.0.0.1 - acme [06/Dec/2026:19:41:39 +0000] "/a-?x=-" 200 0.000',
    ]
    assert paths(chunk(parser, lines)) == ["/foo", "/foo", "/a-"]
    assert [parser.parse_line(line).fields["args"] for line in lines] == ["-", "x=1", "x=-"]


def test_two_fields_that_touch_without_a_boundary_are_refused_at_start() -> None:
    with pytest.raises(FormatError, match=r"^APACHE_LOG_FORMAT: %h and %l touch"):
        apache('%h%l %u %t "%r" %>s %D')
    with pytest.raises(FormatError, match=r"^NGINX_LOG_FORMAT: \$host and \$request_uri touch"):
        nginx("$remote_user [$time_local] $host$request_uri $status $request_time")


# -- 2. request lines that are not METHOD TARGET PROTOCOL -----------------------------------------------
@pytest.mark.parametrize(
    ("request_line", "path"),
    [
        ("Gh0st\\xad\\x00\\x00\\x00\\xe0\\x00\\x00\\x00x\\x9cKc``", "-"),  # scanner junk
        ("\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03", "-"),  # TLS handshake on a plain port
        ("Cookie: mstshash=Administr", "-"),  # RDP scanner
        ("", "-"),
        ("-", "-"),
        ("GET /index.html", "/index.html"),  # HTTP/0.9
        ("GET /a?b=1 HTTP/1.1", "/a"),
        ("OPTIONS * HTTP/1.1", "*"),
    ],
)
def test_a_request_line_that_is_not_method_target_protocol_is_stored_as_dash(request_line: str, path: str) -> None:
    parser = nginx("combined $request_time", customer_from="$remote_addr")
    line = f'10.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "{request_line}" 400 0 "-" "-" 0.001'
    p = chunk(parser, [line, line])
    assert paths(p) == [path, path], p.rejects
    one = parser.parse_line(line)
    assert one.stored is not None and one.stored.path == path


# -- 3. JSON: a path with a space is a path --------------------------------------------------------------
def test_json_path_with_a_space_is_not_read_as_a_request_line() -> None:
    parser = build_parser(FormatOptions(log_format="json"))
    line = '{"time":"2026-10-10T13:55:36Z","customer":"acme","path":"/files/my report.pdf","status":200,"duration":0.1}'
    got = parser.parse_line(line)
    assert got.stored is not None and got.stored.path == "/files/my report.pdf"
    request = line.replace("/files/my report.pdf", "GET /files/x?y=1 HTTP/1.1")
    got = parser.parse_line(request)
    assert got.stored is not None and got.stored.path == "/files/x"


# -- 4. Apache's empty user ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["", "k"])
def test_apache_empty_user_is_no_customer(key: str) -> None:
    parser = apache('%h %l %u %t "%r" %>s %D', customer_hash_key=key)
    line = '10.0.0.1 - "" [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 1042'
    for got in (parser.parse_line(line), parser.parse_line(line)):
        assert got.stored is None and got.reason is not None
        assert got.reason.startswith("no customer"), got.reason
    assert chunk(parser, [line]).rejects[0].reason.startswith("no customer")


# -- 5. an IPv6 address before a port ------------------------------------------------------------------------
def test_ipv6_client_before_its_port() -> None:
    parser = apache(APACHE_WSGI, customer_from="%a", customer_hash_key="k")
    line = wsgi_line("1:2:3::6:7:8", "/x")
    got = parser.parse_line(line)
    assert got.fields["%a"] == "1:2:3::6:7:8" and got.fields["%{remote}p"] == "44782"
    assert got.stored is not None and got.stored.customer_id == customer_id("1:2:3::6:7:8", "k")
    [(customer, _)] = chunk(parser, [line, line]).batches.items()
    assert customer == customer_id("1:2:3::6:7:8", "k")


# -- 6. check-format and ingest agree on a line that is not UTF-8 --------------------------------------------
def test_check_format_refuses_a_line_that_is_not_utf8_as_ingest_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGPULSE_ENV_FILE", "/nonexistent")
    monkeypatch.setenv("LOG_FORMAT", "nginx")
    config.get_settings.cache_clear()
    raw = b'::1 - acme [10/Oct/2026:13:55:36 +0200] "GET /caf\xe9 HTTP/1.1" 200 5 "-" "curl" 0.532\n'
    log = tmp_path / "access.log"
    log.write_bytes(raw)
    ingest = build_parser(FormatOptions(log_format="nginx")).parse_chunk(Chunk(str(log), 1, 0, raw))
    [rejected] = ingest.rejects
    result = CliRunner().invoke(app, ["check-format", str(log)])
    config.get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert f"REJECTED: {rejected.reason}" in result.output


# -- 7. %{MS}T ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", ["ms", "MS", "Ms"])
def test_apache_duration_unit_is_case_insensitive(unit: str) -> None:
    parser = apache(f"%t %>s %u %T %{{{unit}}}T")
    got = parser.parse_line("[10/Oct/2026:13:55:36 +0000] 200 acme 1 1042")
    assert got.stored is not None and got.stored.duration_s == "1.042"


def test_apache_unknown_duration_unit_is_refused() -> None:
    with pytest.raises(FormatError, match=r"^APACHE_LOG_FORMAT: %\{min\}T"):
        apache("%t %>s %u %{min}T")


# -- an empty $proxy_protocol_addr (older nginx without the PROXY protocol) ----------------------------------
@pytest.mark.parametrize("written", ["", "-"])
def test_proxy_protocol_address_written_empty_or_dash_is_no_customer(written: str) -> None:
    parser = nginx(
        '"$proxy_protocol_addr" [$time_local] "$request" $status $request_time',
        customer_from="$proxy_protocol_addr",
        customer_hash_key="k",
    )
    line = f'"{written}" [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 0.001'
    got = parser.parse_line(line)
    assert got.fields["proxy_protocol_addr"] == written
    assert got.reason is not None and got.reason.startswith("no customer"), got.reason
    assert chunk(parser, [line]).rejects[0].reason.startswith("no customer")
