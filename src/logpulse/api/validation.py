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

__all__ = ["BadRequest", "DateRange", "customer_id", "date", "date_range", "instant", "zone"]


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


FIRST_DAY = dt.date(1970, 1, 1)
LAST_DAY = dt.date(2262, 4, 10)
"""The days a range may name. Before 1970 there are no logs to count; InfluxDB's int64 nanosecond
times end at 2262-04-11T23:47:16Z, and the end of 2262-04-10 (local midnight after it) lies before
that in every zone."""
LAST_INSTANT_S = int(dt.datetime(2262, 4, 11, tzinfo=dt.UTC).timestamp())


def date(name: str, value: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"invalid '{name}' date {value[:40]!r}: expected a real date as YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadRequest(f"'{name}' date {value} is outside {FIRST_DAY} … {LAST_DAY}, the days logpulse can store")
    return day


def instant(name: str, value: str, seconds: float) -> int:
    """Whole UTC seconds of an RFC 3339 time, if within 1970-01-01 … 2262-04-11 (422 otherwise)."""
    if not 0 <= seconds <= LAST_INSTANT_S:
        raise BadRequest(
            f"'{name}' {value[:40]!r} is outside 1970-01-01T00:00:00Z … 2262-04-11T00:00:00Z, "
            "the times logpulse can store"
        )
    return int(seconds)


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
