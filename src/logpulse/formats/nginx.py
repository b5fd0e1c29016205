"""nginx access logs, parsed with the user's own `log_format` (NGINX_LOG_FORMAT).

The setting takes the format string as written in nginx.conf, in any of these forms:

    combined $request_time                                  (`combined` = nginx's predefined format)
    $remote_addr - $remote_user [$time_local] "$request" $status ...
    '$remote_addr - $remote_user ' '[$time_local] "$request" ...'     (the quoted parts, concatenated)
    log_format main escape=json '{"time":"$time_iso8601",...}';       (the whole directive)

`escape=default` (nginx writes `"`, `\\` and bytes outside 32..126 as `\\xHH`), `escape=json` and
`escape=none` are honoured when unescaping the customer and the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from logpulse.formats.bulk_times import time_local_seconds
from logpulse.formats.fields import (
    CustomerRule,
    Iso8601,
    SecondAndFraction,
    TimeLocal,
    epoch_seconds,
    no_unescape,
    path_converter,
    seconds_text,
    unescape_json_string,
    unescape_nginx_default,
    upstream_times,
)
from logpulse.formats.plan import (
    ADDRESS,
    IS_ARGS,
    NUMBER,
    PORT,
    STATUS,
    URI_PATH,
    URI_WITH_QUERY,
    Element,
    RegexPlan,
    Roles,
    Shape,
    fast_path_pattern,
    fixed,
    follow_pattern,
    literal,
)
from logpulse.formats.spec import FormatError, FormatOptions, closest

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
)
_VAR = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")
_UPSTREAM_LIST = r"(?:[\d.]+|-)(?:(?:, | : )(?:[\d.]+|-))*"

_UPSTREAM_TIMES = Shape(_UPSTREAM_LIST, "seconds, several separated by ', ' or ' : ', or -", None, r"[\d.-]")
ARGS_AFTER_IS_ARGS = Shape(
    r'(?<=\?)(?:[^\s"\\]|\\.)*|(?<!\?)-', "the query string after ?, or - after no ?", r'[^\s"]', r'[^\s"]'
)
"""`$args` right after `$is_args`: nginx writes a missing `$args` as `-`, so `$uri$is_args$args` of
`GET /foo` is `/foo-`: the `-` is the empty query, not part of the path."""
PROXY_PROTOCOL_ADDRESS = Shape(r'[^\s"]*', "an address, or nothing", r'[^\s"]', r'[^\s"]')
"""Older nginx (1.10 in nielsbasjes/logparser's test line) writes `$proxy_protocol_addr` of a
connection without the PROXY protocol as nothing (`""` in a quoted format), current versions as `-`:
both are lines nginx wrote."""
KNOWN: dict[str, Shape] = {
    "time_local": fixed(TimeLocal.PATTERN, "like 10/Oct/2026:13:55:36 +0200"),
    "time_iso8601": fixed(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", "like 2026-10-10T13:55:36+02:00"),
    "msec": fixed(r"\d+\.\d{3}", "seconds since the epoch with milliseconds"),
    "status": STATUS,
    "request_time": fixed(r"\d+\.\d{3}", "seconds with milliseconds, like 0.532"),
    "upstream_response_time": _UPSTREAM_TIMES,
    "upstream_connect_time": _UPSTREAM_TIMES,
    "upstream_header_time": _UPSTREAM_TIMES,
    "body_bytes_sent": NUMBER,
    "bytes_sent": NUMBER,
    "request_length": NUMBER,
    "connection": NUMBER,
    "connection_requests": NUMBER,
    "pid": NUMBER,
    "remote_addr": ADDRESS,
    "realip_remote_addr": ADDRESS,
    "server_addr": ADDRESS,
    "proxy_protocol_addr": PROXY_PROTOCOL_ADDRESS,
    "proxy_protocol_server_addr": PROXY_PROTOCOL_ADDRESS,
    "remote_port": PORT,
    "realip_remote_port": PORT,
    "server_port": PORT,
    "proxy_protocol_port": PORT,
    "proxy_protocol_server_port": PORT,
    "uri": URI_PATH,
    "document_uri": URI_PATH,
    "request_uri": URI_WITH_QUERY,
    "args": URI_WITH_QUERY,
    "query_string": URI_WITH_QUERY,
    "is_args": IS_ARGS,
}
"""Variables whose values have a known shape. Any other `$name` is a named field whose value runs up
to the next literal character of the format."""
VARIABLES = frozenset(
    """args binary_remote_addr body_bytes_sent bytes_sent connection connection_requests connection_time
    content_length content_type date_gmt date_local document_root document_uri fastcgi_path_info
    fastcgi_script_name gzip_ratio host hostname http2 http3 https invalid_referer is_args limit_conn_status
    limit_rate limit_req_status msec nginx_version pid pipe proxy_add_x_forwarded_for proxy_host proxy_port
    proxy_protocol_addr proxy_protocol_port proxy_protocol_server_addr proxy_protocol_server_port
    query_string realip_remote_addr realip_remote_port realpath_root remote_addr remote_port remote_user
    request request_body request_body_file request_completion request_filename request_id request_length
    request_method request_time request_uri scheme server_addr server_name server_port server_protocol
    ssl_cipher ssl_client_s_dn ssl_client_verify ssl_early_data ssl_protocol ssl_server_name ssl_session_id
    ssl_session_reused status tcpinfo_rcv_space tcpinfo_rtt tcpinfo_rttvar tcpinfo_snd_cwnd time_iso8601
    time_local uid_got uid_set upstream_addr upstream_bytes_received upstream_bytes_sent
    upstream_cache_status upstream_connect_time upstream_header_time upstream_last_server_name
    upstream_queue_time upstream_response_length upstream_response_time upstream_status uri""".split()  # noqa: SIM905 (a word list reads better)
)
"""nginx's own variables (core, proxy, upstream, ssl, realip and friends): any other name is a typo
unless declared in NGINX_CUSTOM_VARIABLES."""
VARIABLE_PREFIXES = (
    "arg_",
    "cookie_",
    "http_",
    "sent_http_",
    "sent_trailer_",
    "upstream_cookie_",
    "upstream_http_",
    "upstream_trailer_",
    "jwt_claim_",
    "jwt_header_",
    "geoip_",
    "geoip2_",
)
TIME_VARS = ("time_local", "time_iso8601", "msec")
PATH_VARS = ("request_uri", "request", "uri")


def format_string(setting: str) -> tuple[str, str]:
    """(format, escape) from NGINX_LOG_FORMAT in any accepted form (see the module docstring)."""
    text = setting.strip()
    escape = "default"
    m = re.match(r"log_format\s+\S+\s*", text)
    directive = m is not None
    if m:
        text = text[m.end() :].strip()
    m = re.match(r"escape=(\w+)\s*", text)
    if m:
        escape = m.group(1)
        if escape not in ("default", "json", "none"):
            raise FormatError(f"NGINX_LOG_FORMAT: unknown escape={escape}: expected default, json or none")
        text = text[m.end() :].strip()
    if directive or text[:1] in ("'", '"'):  # a pasted directive ends at its `;`
        text = _until_semicolon(text).strip()
    if text[:1] in ("'", '"'):
        parts = re.findall(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""", text)
        joined = re.fullmatch(r"""(?:\s*(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))+\s*""", text)
        if joined:
            text = "".join(a or b for a, b in parts)
            text = re.sub(r"\\(.)", r"\1", text)
    if text == "combined" or text.startswith("combined "):
        text = COMBINED + text[len("combined") :]
    if not text:
        raise FormatError("NGINX_LOG_FORMAT is empty")
    return text, escape


def _until_semicolon(text: str) -> str:
    """The text before the first `;` outside quotes (the end of a pasted directive), or all of it."""
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            return text[:i]
    return text


def _tokens(fmt: str) -> list[tuple[str, str | None]]:
    """[(text, variable name or None for literal text)] in order."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _VAR.finditer(fmt):
        if m.start() > pos:
            out.append((fmt[pos : m.start()], None))
        out.append((m.group(0), m.group(1) or m.group(2)))
        pos = m.end()
    if pos < len(fmt):
        out.append((fmt[pos:], None))
    return out


def _quoted(tokens: list[tuple[str, str | None]], i: int) -> bool:
    """Whether field i is followed by a literal `"` (the request line, spaces and all, ends there)."""
    return i + 1 < len(tokens) and tokens[i + 1][1] is None and tokens[i + 1][0].startswith('"')


def _var_name(setting: str, value: str) -> str:
    """`$http_X-Customer-Id` / `http_x_customer_id` -> `http_x_customer_id`."""
    name = value.strip().removeprefix("$").strip("{}")
    if name.lower().startswith(("http_", "sent_http_", "cookie_", "arg_")):
        name = name.lower().replace("-", "_")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise FormatError(f"{setting}={value!r} is not an nginx variable such as $http_x_customer_id")
    return name


def build(opts: FormatOptions) -> RegexPlan:
    """Compile NGINX_LOG_FORMAT and the field settings into a parser (FormatError when they do not fit)."""
    fmt, escape = format_string(opts.nginx_log_format)
    tokens = _tokens(fmt)
    names = [name for _, name in tokens if name is not None]
    if not names:
        raise FormatError(f"NGINX_LOG_FORMAT has no $variables: {fmt!r}")
    known = set(opts.nginx_custom_variables)
    for var in names:
        if var not in VARIABLES and var not in known and not var.startswith(VARIABLE_PREFIXES):
            raise FormatError(
                f"NGINX_LOG_FORMAT: unknown variable ${var}"
                + closest(var, sorted(VARIABLES), "$")
                + " (variables of your own, from map or set: list them in NGINX_CUSTOM_VARIABLES)"
            )
    elements: list[Element] = []
    for i, (text, name) in enumerate(tokens):
        if name is None:
            elements.append(literal(text))
            continue
        shape = KNOWN.get(name) or Shape(follow_pattern(tokens, i, escape == "json"))
        if name == "args" and i > 0 and tokens[i - 1][1] == "is_args":
            shape = ARGS_AFTER_IS_ARGS
        fast = None
        if name in PATH_VARS and escape != "json" and (name != "request" or _quoted(tokens, i)):
            kind = {"request": "request", "request_uri": "uri_query"}.get(name, "uri")
            fast = fast_path_pattern(kind, opts.keep_query_string)
        elements.append(Element.field(text, name, shape, fast))

    def need(setting: str, name: str, what: str) -> str:
        if name not in names:
            raise FormatError(
                f"{setting}=${name} is not in NGINX_LOG_FORMAT; {what} must come from one of its variables: "
                f"{', '.join('$' + n for n in dict.fromkeys(names))}" + closest(name, names, "$")
            )
        return name

    time_var = next((v for v in TIME_VARS if v in names), None)
    if time_var is None:
        raise FormatError("NGINX_LOG_FORMAT has no time: add $time_local, $time_iso8601 or $msec")
    if "status" not in names:
        raise FormatError("NGINX_LOG_FORMAT has no $status: logpulse needs each request's status")
    duration = need("DURATION_FROM", _var_name("DURATION_FROM", opts.duration_from or "$request_time"), "the duration")
    customer = need("CUSTOMER_FROM", _var_name("CUSTOMER_FROM", opts.customer_from or "$remote_user"), "the customer")
    unescape = {"default": unescape_nginx_default, "json": unescape_json_string, "none": no_unescape}[escape]
    path_var = next((v for v in PATH_VARS if v in names), None)
    keep = opts.keep_query_string
    path_conv = path_converter(
        None if path_var is None else "request" if path_var == "request" else "uri", keep, unescape
    )

    converters: dict[str, Callable[[str], SecondAndFraction | None]] = {
        "time_local": TimeLocal(),
        "time_iso8601": Iso8601(),
        "msec": epoch_seconds,
    }
    time_conv = converters[time_var]
    roles = Roles(
        time=time_var,
        time_conv=time_conv,
        time_bulk=time_local_seconds if time_var == "time_local" else None,
        customer=CustomerRule("$" + customer, opts.customer_pattern_re(), opts.customer_hash_key, unescape),
        customer_field=customer,
        status="status",
        duration=duration,
        duration_conv=None
        if duration == "request_time"
        else upstream_times
        if duration.startswith("upstream_")
        else seconds_text,
        path=path_var,
        path_conv=path_conv,
    )
    return RegexPlan("NGINX_LOG_FORMAT", elements, roles)
