"""Apache httpd access logs, parsed with the user's own `LogFormat` string (APACHE_LOG_FORMAT).

The setting takes the format string as in httpd.conf, with or without the surrounding quotes and
with `\\"` or `"` (`LogFormat "%h %l %u %t \\"%r\\" %>s %b" common` -> `%h %l %u %t "%r" %>s %b`);
the nicknames `common` and `combined` (each followed by more directives if wanted) are expanded.

Apache writes `"` and `\\` in `%r`, `%i` and `%o` as `\\"` and `\\\\`, whitespace as C escapes and
other bytes as `\\xhh`: quoted fields accept those escapes and the customer and path are unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from logpulse.formats.bulk_times import time_local_seconds
from logpulse.formats.fields import (
    CustomerRule,
    SecondAndFraction,
    TimeLocal,
    epoch_scaled,
    epoch_seconds,
    path_converter,
    scaled_text,
    unescape_apache,
)
from logpulse.formats.plan import (
    ADDRESS,
    NUMBER,
    PORT,
    QUERY,
    STATUS,
    URI_PATH,
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

COMMON = '%h %l %u %t "%r" %>s %b'
COMBINED = COMMON + ' "%{Referer}i" "%{User-agent}i"'
_DIRECTIVE = re.compile(r"%(!?\d{3}(?:,\d{3})*)?([<>]?)(?:\{([^}]*)\})?(\S)")
LETTERS = "aAbBCDefhHiklLmnopPqrRstTuUvVXIOS"
_TIME = fixed(TimeLocal.PATTERN, "like 10/Oct/2026:13:55:36 +0200")
KNOWN: dict[str, Shape] = {
    "%t": _TIME,  # inside the [ ] Apache writes around it
    "%{sec}t": NUMBER,
    "%{msec}t": NUMBER,
    "%{usec}t": NUMBER,
    "%s": STATUS,
    "%>s": STATUS,
    "%<s": STATUS,
    "%D": Shape(r"\d+", "microseconds", r"\d", r"\d"),
    "%T": Shape(r"\d+", "whole seconds", r"\d", r"\d"),
    "%{s}T": Shape(r"\d+", "whole seconds", r"\d", r"\d"),
    "%{ms}T": Shape(r"\d+", "milliseconds", r"\d", r"\d"),
    "%{us}T": Shape(r"\d+", "microseconds", r"\d", r"\d"),
    "%b": Shape(r"\d+|-", "bytes or -", r"[\d-]", r"[\d-]"),
    "%B": NUMBER,
    "%I": NUMBER,
    "%O": NUMBER,
    "%S": NUMBER,
    "%k": NUMBER,
    "%P": NUMBER,
    "%{pid}P": NUMBER,
    "%h": ADDRESS,
    "%a": ADDRESS,
    "%{c}a": ADDRESS,
    "%A": ADDRESS,
    "%p": PORT,
    "%{canonical}p": PORT,
    "%{local}p": PORT,
    "%{remote}p": PORT,
    "%U": URI_PATH,
    "%q": QUERY,
}
"""Directives whose values have a known shape; any other runs up to the next literal character."""
DURATIONS: dict[str, Callable[[str], str | None] | None] = {
    "%D": scaled_text(6),
    "%{us}T": scaled_text(6),
    "%{ms}T": scaled_text(3),
    "%T": None,  # whole seconds: the field's regex (digits) is already a valid duration
    "%{s}T": None,
}


def format_string(setting: str) -> str:
    """The LogFormat string from APACHE_LOG_FORMAT (quotes and `\\"` as in httpd.conf accepted)."""
    text = setting.strip()
    m = re.fullmatch(r'(?:LogFormat\s+)?"((?:[^"\\]|\\.)*)"(?:\s+\S+)?', text)
    if m:
        text = m.group(1)
    text = text.replace('\\"', '"')
    for nick, full in (("combined", COMBINED), ("common", COMMON)):
        if text == nick or text.startswith(nick + " "):
            text = full + text[len(nick) :]
    if not text:
        raise FormatError("APACHE_LOG_FORMAT is empty")
    return text


def _name(modifier: str, arg: str | None, letter: str) -> str:
    """A directive's field name: `%>s`, `%{X-Customer-Id}i`. (A status condition such as `%400r`
    is kept in front by the caller: that field is `-` for other statuses, so it is a field of its own.)

    The unit of `%{UNIT}T` is read without case, as httpd does (`%{MS}T` is `%{ms}T`); a unit httpd
    does not know would silently be whole seconds there, so it is refused here."""
    if letter == "T" and arg is not None:
        arg = arg.lower()
        if arg not in ("s", "ms", "us"):
            raise FormatError(f"APACHE_LOG_FORMAT: %{{{arg}}}T: the unit of %{{UNIT}}T is s, ms or us")
    return f"%{modifier}{'{' + arg + '}' if arg is not None else ''}{letter}"


def _tokens(fmt: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    pos = 0
    buf = ""
    for m in _DIRECTIVE.finditer(fmt):
        buf += fmt[pos : m.start()]
        pos = m.end()
        condition, modifier, arg, letter = m.groups()
        if letter == "%":
            buf += "%"
            continue
        if letter not in LETTERS:
            known = sorted({k for k in KNOWN} | {f"%{c}" for c in LETTERS})
            raise FormatError(f"APACHE_LOG_FORMAT: unknown directive {m.group(0)!r}" + closest(m.group(0), known))
        if buf:
            out.append((buf, None))
            buf = ""
        name = _name(modifier, arg, letter)
        out.append((m.group(0), f"%{condition}{name[1:]}" if condition else name))
    buf += fmt[pos:]
    if buf:
        out.append((buf, None))
    return out


def _canonical(value: str) -> str:
    """Case-insensitive header names: `%{x-customer-id}i` and `%{X-Customer-Id}i` are one field."""
    m = re.fullmatch(r"%([<>]?)\{([^}]*)\}([ioCenxT])", value.strip())
    return f"%{m.group(1)}{{{m.group(2).lower()}}}{m.group(3)}" if m else value.strip()


def build(opts: FormatOptions) -> RegexPlan:
    """Compile APACHE_LOG_FORMAT and the field settings into a parser (FormatError when they do not fit)."""
    fmt = format_string(opts.apache_log_format)
    tokens = _tokens(fmt)
    elements: list[Element] = []
    for i, (text, name) in enumerate(tokens):
        if name is None:
            elements.append(literal(text))
            continue
        if name == "%t":  # `[10/Oct/2026:13:55:36 -0700]`: the brackets are text, the time a field
            elements += [literal("["), Element.field(text, name, _TIME), literal("]")]
            continue
        shape = KNOWN.get(name) or Shape(follow_pattern(tokens, i, True))
        quoted = i + 1 < len(tokens) and tokens[i + 1][1] is None and tokens[i + 1][0].startswith('"')
        fast = None
        if name == "%U" or (name == "%r" and quoted):
            fast = fast_path_pattern("request" if name == "%r" else "uri", opts.keep_query_string)
        elements.append(Element.field(text, name, shape, fast))
    names = [name for _, name in tokens if name is not None]
    by_canon = {_canonical(n): n for n in names}

    def need(setting: str, value: str, what: str) -> str:
        found = by_canon.get(_canonical(value))
        if found is None:
            raise FormatError(
                f"{setting}={value} is not in APACHE_LOG_FORMAT; {what} must come from one of its fields: "
                f"{', '.join(dict.fromkeys(names))}" + closest(value, names)
            )
        return found

    tl = TimeLocal()
    times: dict[str, Callable[[str], SecondAndFraction | None]] = {
        "%t": tl,
        "%{sec}t": epoch_seconds,
        "%{msec}t": epoch_scaled(3),
        "%{usec}t": epoch_scaled(6),
    }
    time_field = next((t for t in times if t in names), None)
    if time_field is None:
        raise FormatError("APACHE_LOG_FORMAT has no time: add %t (or %{sec}t, %{msec}t, %{usec}t)")
    status = next((s for s in ("%>s", "%s", "%<s") if s in names), None)
    if status is None:
        raise FormatError("APACHE_LOG_FORMAT has no status: add %>s")
    if opts.duration_from:
        duration = need("DURATION_FROM", opts.duration_from, "the duration")
        if duration not in DURATIONS:
            raise FormatError(f"DURATION_FROM={opts.duration_from} is not a duration: use %D, %T, %{{ms}}T or %{{us}}T")
    else:
        duration = next((d for d in DURATIONS if d in names), "")
        if not duration:
            raise FormatError("APACHE_LOG_FORMAT has no duration: add %D (microseconds) or %{ms}T")
    customer = need("CUSTOMER_FROM", opts.customer_from or "%u", "the customer")
    keep = opts.keep_query_string
    path_field = "%r" if "%r" in names else "%U" if "%U" in names else None
    path_conv = path_converter(
        None if path_field is None else "request" if path_field == "%r" else "uri", keep, unescape_apache
    )

    roles = Roles(
        time=time_field,
        time_conv=times[time_field],
        time_bulk=time_local_seconds if time_field == "%t" else None,
        customer=CustomerRule(
            customer, opts.customer_pattern_re(), opts.customer_hash_key, unescape_apache, ("", "-", '""')
        ),
        customer_field=customer,
        status=status,
        duration=duration,
        duration_conv=DURATIONS[duration],
        path=path_field,
        path_conv=path_conv,
    )
    return RegexPlan("APACHE_LOG_FORMAT", elements, roles)
