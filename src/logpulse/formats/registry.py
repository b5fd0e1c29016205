"""LOG_FORMAT -> parser: the one place that knows which formats exist and builds the configured one.

Every parser keeps the contract of `logpulse.formats.logpulse.parse_chunk`: a `Chunk` of complete
lines in, a `ParsedChunk` out (the accepted requests as `RequestColumns` across customers, `Reject`s with
byte offset and reason, the number of lines seen), point times unique and deterministic per (file, byte
offset). So storage, rollups and scoring never know which format a line came from.

`build_parser` checks the format settings and raises `FormatError` with a one-line message naming
the variable; commands call it before they start anything. The parser it returns applies
`formats.validate` to every format's requests, so each path that parses lines refuses the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from logpulse.formats import apache, jsonlines, logpulse, nginx
from logpulse.formats.fields import NO_CUSTOMER, stored_customer_id
from logpulse.formats.record import LineRecord
from logpulse.formats.spec import FormatError, FormatOptions, LineParser
from logpulse.formats.validate import RequestCheck, ValidatedParser
from logpulse.model import Chunk, ParsedChunk

if TYPE_CHECKING:
    from logpulse.config import Settings

FORMATS = ("logpulse", "nginx", "apache", "json")
__all__ = ["FORMATS", "NO_CUSTOMER", "FormatError", "FormatOptions", "LineParser", "build_parser", "customer_id"]


@dataclass
class _LogpulseFormat:
    """Today's format; CUSTOMER_HASH_KEY renames each distinct customer of a chunk (no per-line cost)."""

    hash_key: bytes | None

    def parse_chunk(self, chunk: Chunk) -> ParsedChunk:
        parsed = logpulse.parse_chunk(chunk)
        key = self.hash_key
        if key is not None and parsed.requests.customers:
            parsed.requests = parsed.requests.renamed([stored_customer_id(c, key) for c in parsed.requests.customers])
        return parsed

    def parse_line(self, line: str) -> LineRecord:
        line = line.removesuffix("\n")
        parts = line.split(" ")
        fields = (
            dict(zip(("date", "time", "customer_id", "path", "status", "duration"), parts, strict=True))
            if len(parts) == 6
            else {}
        )
        parsed = self.parse_chunk(Chunk("<line>", 0, 0, line.encode("utf-8") + b"\n"))
        return LineRecord.from_batches(fields, parsed.batches, parsed.rejects[0].reason if parsed.rejects else None)


_BUILDERS: dict[str, Callable[[FormatOptions], LineParser]] = {
    "nginx": nginx.build,
    "apache": apache.build,
    "json": jsonlines.JsonLines,
}


def build_parser(opts: FormatOptions | Settings) -> LineParser:
    """The parser for LOG_FORMAT and its settings, its requests validated; FormatError (one line)
    when the settings do not fit."""
    if not isinstance(opts, FormatOptions):
        opts = FormatOptions.from_settings(opts)
    return ValidatedParser(_format_parser(opts), RequestCheck(opts.max_future_s, opts.max_duration_s))


def _format_parser(opts: FormatOptions) -> LineParser:
    if opts.log_format == "logpulse":
        for name, value in (
            ("CUSTOMER_FROM", opts.customer_from),
            ("CUSTOMER_PATTERN", opts.customer_pattern),
            ("DURATION_FROM", opts.duration_from),
        ):
            if value:
                raise FormatError(
                    f"{name} is set but LOG_FORMAT=logpulse has fixed fields; use it with nginx, apache or json"
                )
        return _LogpulseFormat(opts.customer_hash_key.encode() if opts.customer_hash_key else None)
    builder = _BUILDERS.get(opts.log_format)
    if builder is None:
        raise FormatError(f"LOG_FORMAT={opts.log_format!r} is not a format: expected one of {', '.join(FORMATS)}")
    return builder(opts)


def customer_id(customer: str, hash_key: str) -> str:
    """The id logpulse stores for `customer` (`logpulse customer-id`): its HMAC when a key is set."""
    return stored_customer_id(customer, hash_key.encode()) if hash_key else customer
