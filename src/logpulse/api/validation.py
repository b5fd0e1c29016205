"""Request parameters: what a valid customer id, date, zone and range are, with 422 messages.

Nothing a client sends reaches InfluxQL unvalidated: ids must match the parser's customer id rule
(and are quoted as literals anyway), dates are parsed into real dates, zones must be IANA names.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from logpulse.api.errors import BadRequest
from logpulse.formats.logpulse import CUSTOMER_ID_PATTERN, CUSTOMER_ID_RE
from logpulse.readmodel.localtime import DateRange

__all__ = ["BadRequest", "DateRange", "customer_id", "date", "date_range", "zone"]


def customer_id(value: str) -> str:
    if not CUSTOMER_ID_RE.match(value):
        raise BadRequest(
            f"invalid customer id {value[:80]!r}: expected {CUSTOMER_ID_PATTERN} "
            "(1-64 of letters, digits, '_', '.', '-')"
        )
    return value


def zone(value: str) -> ZoneInfo:
    try:
        if not value or len(value) > 64 or value.startswith(("/", ".")) or ".." in value:
            raise ValueError
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(
            f"unknown time zone {value[:64]!r}: expected an IANA name such as UTC or Europe/Berlin"
        ) from None


def date(name: str, value: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"invalid '{name}' date {value[:40]!r}: expected a real date as YYYY-MM-DD") from None


def date_range(frm: str | None, to: str | None, tz_name: str, max_days: int) -> DateRange:
    """Validate from/to/tz: from required, to defaults to today in tz, inclusive, bounded length."""
    tz = zone(tz_name)
    if not frm:
        raise BadRequest("missing 'from' date: expected from=YYYY-MM-DD")
    first = date("from", frm)
    last = date("to", to) if to else dt.datetime.now(tz).date()
    if first > last and not to:
        raise BadRequest(f"'from' ({first}) is in the future: today is {last} in {tz.key}")
    if first > last:
        raise BadRequest(f"'from' ({first}) is after 'to' ({last})")
    days = (last - first).days + 1
    if days > max_days:
        raise BadRequest(f"range of {days} days is longer than the maximum of {max_days} days (MAX_RANGE_DAYS)")
    return DateRange(first, last, tz)
