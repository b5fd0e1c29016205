"""Parameters of the series and fleet routes, validated into values or a 422 naming the parameter.

Series take `from`/`to` as a date (local midnight in `tz`; `to` inclusive, as for stats) or an RFC 3339
time (`to` exclusive). Times must lie on a 15-minute boundary: rollups are 15-minute windows, and an
answer that silently widened the range would be wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from logpulse.api import validation
from logpulse.api.errors import BadRequest
from logpulse.readmodel.localtime import INTERVALS, NS, WINDOW_S, local_midnight_ns
from logpulse.readmodel.paging import SORT_KEYS

ORDERS = ("asc", "desc")


def interval(value: str) -> str:
    if value not in INTERVALS:
        raise BadRequest(f"unknown 'interval' {value[:20]!r}: expected one of {', '.join(INTERVALS)}")
    return value


def sort_key(value: str) -> str:
    if value not in SORT_KEYS:
        raise BadRequest(f"unknown 'sort' key {value[:40]!r}: expected one of {', '.join(SORT_KEYS)}")
    return value


def order(value: str) -> str:
    if value not in ORDERS:
        raise BadRequest(f"unknown 'order' {value[:20]!r}: expected asc or desc")
    return value


def _instant(name: str, value: str, tz: ZoneInfo, *, end: bool) -> int:
    """UTC ns of a date (local midnight; the day after for an inclusive `to`) or an RFC 3339 time."""
    if len(value) == 10:
        day = validation.date(name, value)
        return local_midnight_ns(day + dt.timedelta(days=1) if end else day, tz)
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"invalid '{name}' {value[:40]!r}: expected a date YYYY-MM-DD or an RFC 3339 time "
            "such as 2026-11-01T14:00:00+01:00"
        ) from None
    if t.tzinfo is None:
        raise BadRequest(f"invalid '{name}' {value[:40]!r}: an RFC 3339 time needs an offset (Z or ±hh:mm)")
    try:
        seconds = t.timestamp()
    except (OverflowError, ValueError):  # an offset that moves year 1 or 9999 out of datetime's range
        seconds = -1.0
    seconds = validation.instant(name, value, seconds)
    if seconds % WINDOW_S:
        raise BadRequest(
            f"'{name}' {value[:40]!r} is not on a 15-minute boundary: rollups are 15-minute windows "
            "(use :00, :15, :30 or :45 and whole seconds)"
        )
    return seconds * NS


@dataclass(frozen=True)
class TimeRange:
    """[start_ns, end_ns) in UTC for a series, and the zone its intervals are local to."""

    start_ns: int
    end_ns: int
    tz: ZoneInfo


def time_range(frm: str | None, to: str | None, tz_name: str, max_days: int) -> TimeRange:
    tz = validation.zone(tz_name)
    if not frm:
        raise BadRequest("missing 'from': expected a date YYYY-MM-DD or an RFC 3339 time")
    start = _instant("from", frm, tz, end=False)
    tomorrow = dt.datetime.now(tz).date() + dt.timedelta(days=1)
    end = _instant("to", to, tz, end=True) if to else local_midnight_ns(tomorrow, tz)
    if start >= end:
        raise BadRequest(f"'from' ({frm}) is not before 'to' ({to or 'end of today'})")
    if end - start > max_days * 86_400 * NS + 3600 * NS:  # + an hour: a range of max_days may hold a 25-hour day
        raise BadRequest(f"range longer than the maximum of {max_days} days (MAX_RANGE_DAYS)")
    return TimeRange(start, end, tz)
