"""Seals: which rollup identities are final, so that `logpulse compact` may merge their points in windows
that are still open.

A rollup identity (file × level × byte segment × first offset, `rollups/identity.py`) gives its points
the same offset in every window of its level. Its points hold cumulative values and keep growing while
its segment is read; once reading has passed the segment's end, every line of it has been counted and a
replay or a second ingest rewrites the very same values: the identity is **sealed**. The rollup step
emits a seal when a segment closes that way (`rollups/step.py`), never at the end of input or on an idle
close (the file's last segment can still grow), and the sink writes it only after InfluxDB acknowledged
every point of that segment (`flow/sinks/influx.py`). A crash in between leaves no seal: the identity
is then merged once its windows close, as every identity was before.

One point per (level, identity) in the measurement `rollup_seals` of the rollups retention policy, tag
`level` (the level's measurement), time = the start of the latest window the segment wrote + the
identity's offset, field `first_window` = the start of the earliest one. Deterministic: a replay
rewrites the same point. The offset is the time modulo the window; the window span lets the compactor
match a source to its seal only inside the windows that identity wrote, so two identities whose hashed
offsets collide in different windows are never mistaken for each other (`Seals.sealed`). A seal's
time is at or after every window of its identity, so the seals of the sources in windows from `start`
on are those with time >= `start`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logpulse.storage.influx import InfluxWriter, quote_ident, quote_literal, series_rows
from logpulse.storage.points import ROLLUP_RP, RollupLevel

MEASUREMENT = "rollup_seals"
TAG_LEVEL = "level"
FIELD_FIRST = "first_window"


@dataclass(frozen=True, slots=True)
class Seal:
    """One sealed identity: its level, offset in the window and the windows it wrote."""

    level: str
    offset_ns: int
    first_window_ns: int
    last_window_ns: int

    def line(self) -> str:
        return (
            f"{MEASUREMENT},{TAG_LEVEL}={self.level} {FIELD_FIRST}={self.first_window_ns}i "
            f"{self.last_window_ns + self.offset_ns}"
        )


@dataclass
class Seals:
    """The seals of one level read back: per offset, the window spans sealed under it."""

    level: RollupLevel
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def sealed(self, window_start: int, offset: int) -> bool:
        """Is the source at `window_start + offset` the point of a sealed identity?"""
        return any(a <= window_start <= b for a, b in self.spans.get(offset, ()))

    def __bool__(self) -> bool:
        return bool(self.spans)


def read(writer: InfluxWriter, level: RollupLevel, start: int) -> Seals:
    """The seals of `level` whose identities may have points in windows from `start` on."""
    q = (
        f"SELECT {quote_ident(FIELD_FIRST)} FROM {quote_ident(ROLLUP_RP)}.{quote_ident(MEASUREMENT)} "
        f"WHERE {quote_ident(TAG_LEVEL)} = {quote_literal(level.measurement)} AND time >= {start}"
    )
    out = Seals(level)
    for result in writer.query(q):
        for _, row in series_rows(result):
            t, first = int(row["time"]), row.get(FIELD_FIRST)
            if first is None:
                continue
            offset = t % level.window_ns
            out.spans.setdefault(offset, []).append((int(first), t - offset))
    return out
