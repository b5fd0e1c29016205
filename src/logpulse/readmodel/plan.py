"""Which rollup level answers which part of a range (the statements are in `influxql`).

A rollup level is a measurement of per-customer windows of one fixed UTC length (15 minutes, and
coarser ones when the processor writes them), each point's time being its window start plus an
identity offset below 900 s (window = time − time mod length). The API groups windows into local
intervals (days, hours, quarter-hours of the requested zone) whose bounds are on 15-minute
boundaries. `plan` covers every interval with the coarsest windows that fit inside it (a UTC day
wholly inside a local day is one 1d window, the rest hours, the rest quarter-hours), so a 30-day UTC
range reads 30 rows instead of 2,880. Reading a string field is what costs in InfluxDB (measured
≈ 40 ns per byte of histogram), so fewer, larger rows win.

InfluxDB 1.x does not support OR between time ranges (such a WHERE silently matches nothing), so
each level reads its ranges with one statement per range; ranges at most `COALESCE_WINDOWS` windows
apart are read as one and the windows between them are dropped again by `Plan.keep`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from logpulse.readmodel.localtime import IntArray
from logpulse.storage.points import ROLLUP_LEVELS, RollupLevel

FIELDS = ("count", "failed", "sum", "hist")
COALESCE_WINDOWS = 2


LEVELS: tuple[RollupLevel, ...] = tuple(sorted(ROLLUP_LEVELS, key=lambda lvl: -lvl.window_ns))
"""Rollup levels the processor writes, coarsest first (the finest is always 15 minutes)."""


@dataclass
class Plan:
    """Per level, the [start, end) UTC ns runs of its windows to read, and the statements' ranges."""

    runs: dict[RollupLevel, list[tuple[int, int]]] = field(default_factory=dict)

    def ranges(self, level: RollupLevel) -> list[tuple[int, int]]:
        """Ranges to query: the runs, with gaps of at most COALESCE_WINDOWS windows bridged."""
        out: list[tuple[int, int]] = []
        for a, b in self.runs.get(level, []):
            if out and a - out[-1][1] <= COALESCE_WINDOWS * level.window_ns:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
        return out

    def keep(self, level: RollupLevel, windows: IntArray) -> np.ndarray:
        """Mask of the windows (starts, ns) that lie inside a planned run of `level`."""
        runs = self.runs.get(level, [])
        if not runs:
            return np.zeros(len(windows), dtype=bool)
        starts = np.asarray([a for a, _ in runs], dtype=np.int64)
        ends = np.asarray([b for _, b in runs], dtype=np.int64)
        i = np.searchsorted(starts, windows, side="right") - 1
        ok = i >= 0
        ok[ok] = windows[ok] < ends[i[ok]]
        return ok


def plan(bounds: IntArray, levels: tuple[RollupLevel, ...] = LEVELS) -> Plan:
    """Cover the consecutive intervals [bounds[i], bounds[i+1]) with windows of the given levels.

    `bounds` are on 15-minute boundaries; the finest level must be 15 minutes so that everything is
    covered. Windows never cross an interval bound, so each row read belongs to one interval.
    """
    if len(bounds) < 2:
        return Plan({lvl: [] for lvl in levels})
    # a level whose window is longer than every interval covers none of them (a 15m series: 672 intervals)
    longest = int(np.diff(bounds).max())
    fitting = tuple(lvl for lvl in levels[:-1] if lvl.window_ns <= longest) + levels[-1:]
    if len(fitting) == 1:  # one level: one run over everything
        p = Plan({lvl: [] for lvl in levels})
        p.runs[fitting[0]] = [(int(bounds[0]), int(bounds[-1]))]
        return p
    p = plan_ranges(list(itertools.pairwise(bounds.tolist())), fitting)
    p.runs = {lvl: p.runs.get(lvl, []) for lvl in levels}
    return p


def plan_ranges(ranges: list[tuple[int, int]], levels: tuple[RollupLevel, ...]) -> Plan:
    """Cover each [a, b) with the coarsest aligned windows that fit; runs of a level merged."""
    p = Plan({lvl: [] for lvl in levels})
    for a, b in ranges:
        _cover(a, b, levels, p.runs)
    for lvl, runs in p.runs.items():
        merged: list[tuple[int, int]] = []
        for a, b in sorted(runs):
            if merged and merged[-1][1] == a:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        p.runs[lvl] = merged
    return p


def _cover(a: int, b: int, levels: tuple[RollupLevel, ...], runs: dict[RollupLevel, list[tuple[int, int]]]) -> None:
    if a >= b:
        return
    level, finer = levels[0], levels[1:]
    if not finer:
        runs[level].append((a, b))
        return
    lo = -(-a // level.window_ns) * level.window_ns
    hi = b // level.window_ns * level.window_ns
    if lo >= hi:
        _cover(a, b, finer, runs)
        return
    runs[level].append((lo, hi))
    _cover(a, lo, finer, runs)
    _cover(hi, b, finer, runs)


Who = str | list[str] | None
"""Whose rows to read: one customer, several (grouped by customer), or every customer (grouped)."""

"""The tag value of fleet-wide rollups (all customers' requests together), outside the id charset."""
