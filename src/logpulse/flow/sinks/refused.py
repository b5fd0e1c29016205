"""Writing a body of points when InfluxDB may refuse some of them: find those, write the others.

InfluxDB 1.x answers 400 for a body with a line it cannot parse or a field type conflict, and
writes every other point of the body (a *partial write*). Its message names the first problem, not
every refused point, so the body is split in halves, each written again, until each refused point
is alone: rewriting an accepted point is harmless (same measurement, tags and time: the same
point). One bad point in a body of n costs about 2 log2(n) more requests; the other points are
written, the refused ones are returned with InfluxDB's reason for the dead-letter file.

Points older than the retention policy are dropped by InfluxDB on purpose (RAW_RETENTION): a body
refused only for that is done, without splitting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from logpulse.storage.influx import InfluxRefused

Write = Callable[[Sequence[str]], None]


def write_finding_refused(write: Write, lines: Sequence[str]) -> list[tuple[str, str]]:
    """Write `lines` with `write`; returns the (point, InfluxDB's reason) of each refused point.

    Other errors (unreachable, credentials, no such database or retention policy) propagate."""
    try:
        write(lines)
    except InfluxRefused as exc:
        if not exc.about_points:
            raise
        if exc.beyond_retention_only:
            return []
        if len(lines) == 1:
            return [(lines[0], exc.reason)]
        half = len(lines) // 2
        return write_finding_refused(write, lines[:half]) + write_finding_refused(write, lines[half:])
    return []
