"""What the format parsers are built from (plain values taken from Settings), what every one provides
(`LineParser`) and their one error type."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from logpulse.formats.record import LineRecord
from logpulse.model import Chunk, ParsedChunk

if TYPE_CHECKING:
    from logpulse.config import Settings


class LineParser(Protocol):
    """What every format provides."""

    def parse_chunk(self, chunk: Chunk) -> ParsedChunk: ...

    def parse_line(self, line: str) -> LineRecord: ...


class FormatError(ValueError):
    """A format setting that cannot work (unknown field, missing status, bad pattern, ...).

    The message is one line that starts with the variable's name, for the user to fix before
    anything starts; the CLI reports it as a `SettingsError` with where the value came from."""

    @property
    def setting(self) -> str:
        """The variable the message is about (its leading name, e.g. NGINX_LOG_FORMAT)."""
        m = re.match(r"[A-Z][A-Z_]+", str(self))
        return m.group(0) if m else "LOG_FORMAT"


def closest(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """'; did you mean X?' for the closest candidate, or '' when none is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{match[0]}?" if match else ""


@dataclass(frozen=True)
class FormatOptions:
    """The settings that shape a parser (LOG_FORMAT and its options: docs/configuration.md)."""

    log_format: str = "logpulse"
    nginx_log_format: str = "combined $request_time"
    nginx_custom_variables: tuple[str, ...] = ()
    apache_log_format: str = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
    json_fields: str = "time=time,customer=customer,path=path,status=status,duration=duration"
    duration_from: str = ""
    duration_unit: str = "s"
    customer_from: str = ""
    customer_pattern: str = ""
    customer_hash_key: str = ""
    keep_query_string: bool = False
    max_future_s: float = 300.0
    max_duration_s: float = 86400.0

    @classmethod
    def from_settings(cls, s: Settings) -> FormatOptions:
        return cls(
            log_format=s.log_format,
            nginx_log_format=s.nginx_log_format,
            nginx_custom_variables=tuple(
                v.strip().removeprefix("$") for v in s.nginx_custom_variables.split(",") if v.strip()
            ),
            apache_log_format=s.apache_log_format,
            json_fields=s.json_fields,
            duration_from=s.duration_from,
            duration_unit=s.duration_unit,
            customer_from=s.customer_from,
            customer_pattern=s.customer_pattern,
            customer_hash_key=s.customer_hash_key,
            keep_query_string=s.keep_query_string,
            max_future_s=s.max_future_s,
            max_duration_s=s.max_duration_s,
        )

    def customer_pattern_re(self) -> re.Pattern[str] | None:
        """CUSTOMER_PATTERN compiled; it must have a named group `customer`."""
        if not self.customer_pattern:
            return None
        try:
            pattern = re.compile(self.customer_pattern)
        except re.error as exc:
            raise FormatError(f"CUSTOMER_PATTERN is not a valid regular expression: {exc}") from None
        if "customer" not in pattern.groupindex:
            raise FormatError(
                "CUSTOMER_PATTERN has no named group 'customer': write it as (?P<customer>...), "
                "e.g. ^/v1/accounts/(?P<customer>[^/]+)/"
            )
        return pattern
