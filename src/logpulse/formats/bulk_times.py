"""Many time texts at once: epoch seconds for a whole column of fixed-width times, with numpy.

A chunk of a million bytes holds thousands of lines and almost as many distinct seconds, so even a
per-minute cache leaves a few Python steps per line. The fixed-width `$time_local` (nginx), `%t`
(Apache) and `YYYY-MM-DD HH:MM:SS` (the logpulse format) times are converted here as one byte
matrix instead: each digit is a column, the calendar is arithmetic on whole columns.

`time_local_seconds` gives exactly what `fields.TimeLocal` gives for each text, `iso_seconds` what
the logpulse format's per-line path gives (property tests compare them), as `(seconds, valid)`:
int64 epoch seconds and a mask of the texts that are real times (a day that exists, hour 0-23,
minute 0-59). A text that is not of the expected shape at all makes them return None, and the
caller converts one text at a time.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CODES = {(ord(m[0]) << 16) | (ord(m[1]) << 8) | ord(m[2]): i for i, m in enumerate(_MONTH_NAMES, 1)}
_SORTED_CODES = np.array(sorted(_CODES), dtype=np.int64)
_MONTH_OF_SORTED = np.array([_CODES[c] for c in sorted(_CODES)], dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_NS = 1_000_000_000
SAFE_SECONDS = 9_000_000_000
"""Epoch seconds whose nanoseconds fit int64 (until 2255): a time beyond is left to Python ints."""


def _matrix(texts: list[str], width: int) -> npt.NDArray[np.int64] | None:
    """The texts as an (n, width) matrix of character codes, or None when one is not `width` ASCII
    characters long."""
    joined = "".join(texts)
    if len(joined) != width * len(texts) or not joined.isascii():
        return None
    return np.frombuffer(joined.encode("ascii"), np.uint8).reshape(len(texts), width).astype(np.int64)


def _numbers(m: npt.NDArray[np.int64], places: tuple[tuple[int, int], ...]) -> list[Ints] | None:
    """The decimal numbers at (first column, digits) of each row, or None when one of those columns
    holds a character other than 0-9."""
    out = []
    for first, digits in places:
        d = m[:, first : first + digits] - 48
        if d.size and (d.min() < 0 or d.max() > 9):
            return None
        number = np.zeros(len(m), dtype=np.int64)
        for k in range(digits):
            number = number * 10 + d[:, k]
        out.append(number)
    return out


def days_from_civil(year: Ints, month: Ints, day: Ints) -> Ints:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's `days_from_civil`); the
    dates must be real (see `real_dates`)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: Ints = era * 146_097 + doe - 719_468
    return days


def real_dates(year: Ints, month: Ints, day: Ints) -> Mask:
    """Which (year, month, day) exist: what `datetime.date` accepts (years 1-9999)."""
    month_ok = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    real: Mask = month_ok & (year >= 1) & (year <= 9999) & (day >= 1) & (day <= last)
    return real


def _seconds(year: Ints, month: Ints, day: Ints, hour: Ints, minute: Ints, second: Ints) -> tuple[Ints, Mask]:
    valid = real_dates(year, month, day) & (hour <= 23) & (minute <= 59)
    safe = np.where(valid, month, 1), np.where(valid, day, 1)
    days = days_from_civil(np.where(valid, year, 1970), *safe)
    return days * 86_400 + hour * 3_600 + minute * 60 + second, valid


def time_local_seconds(texts: list[str]) -> tuple[Ints, Mask] | None:
    """`10/Oct/2026:13:55:36 +0200` texts (`fields.TimeLocal.PATTERN`) -> UTC epoch seconds, as
    `TimeLocal` converts one: a seconds field of 60 (a leap second) is accepted, the offset's
    minutes are taken as written."""
    m = _matrix(texts, 26)
    if m is None:
        return None
    fields = _numbers(m, ((0, 2), (7, 4), (12, 2), (15, 2), (18, 2), (22, 2), (24, 2)))
    if fields is None or not np.isin(m[:, 21], (43, 45)).all():  # `+` or `-`
        return None
    day, year, hour, minute, second, tz_hours, tz_minutes = fields
    code = (m[:, 3] << 16) | (m[:, 4] << 8) | m[:, 5]
    at = np.minimum(np.searchsorted(_SORTED_CODES, code), len(_SORTED_CODES) - 1)
    month = np.where(_SORTED_CODES[at] == code, _MONTH_OF_SORTED[at], 0)
    seconds, valid = _seconds(year, month, day, hour, minute, second)
    offset = (tz_hours * 3_600 + tz_minutes * 60) * np.where(m[:, 21] == 45, -1, 1)
    return seconds - offset, valid & (second < 61)


_NO_TEXT = "0000-01-01 00:00:00"
"""Stands in for a line without a time text: year 0 is not a real date, so the line is invalid."""


def iso_seconds(texts: list[str | None]) -> tuple[Ints, Mask] | None:
    """`YYYY-MM-DD HH:MM:SS` texts (UTC) -> epoch seconds, and which are real (a day that exists, years
    1-9999, hour 0-23, minute 0-59; the seconds are taken as written). None stands for no text (an
    invalid line). Returns None when a text is not of that shape at all; the caller then converts one
    text at a time.

    Why: a 30-day backfill has almost one distinct second per line, so converting once per distinct
    text is a Python step per line, ~a seventh of parsing such a chunk (profiled)."""
    if texts.count(None):
        texts = [_NO_TEXT if t is None else t for t in texts]
    m = _matrix(cast(list[str], texts), 19)
    if m is None or not (m[:, (4, 7)] == 45).all() or not (m[:, 10] == 32).all() or not (m[:, (13, 16)] == 58).all():
        return None
    fields = _numbers(m, ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2)))
    if fields is None:
        return None
    return _seconds(*fields)


def point_times(seconds: Ints, fractions: list[str | None] | None, offsets: Ints, file_key: int) -> tuple[Ints, Mask]:
    """The point time of each line (`logpulse.point_time`, vectorised): seconds, plus the fraction as
    written (None: no fraction; `fractions` None: none has one), plus `(offset + file_key) mod` the
    fraction's unit. Returns the nanoseconds and a mask of the times that fit int64 (the others
    are left to `point_time`, whose Python ints have no bound)."""
    fits = (seconds > -SAFE_SECONDS) & (seconds < SAFE_SECONDS)
    base = np.where(fits, seconds, 0) * _NS
    if fractions is None or fractions.count(None) == len(fractions):
        return base + (offsets + file_key % _NS) % _NS, fits
    padded = "".join(f.ljust(9, "0") if f else "000000000" for f in fractions)
    digits = np.frombuffer(padded.encode("ascii"), np.uint8).reshape(len(fractions), 9).astype(np.int64) - 48
    value = digits @ (10 ** np.arange(8, -1, -1, dtype=np.int64))
    unit = 10 ** (9 - np.fromiter((len(f) if f else 0 for f in fractions), np.int64, len(fractions)))
    return base + value + (offsets + file_key % _NS) % unit, fits
