"""Compaction of closed rollup windows: what one customer-window's stored rows become.

A window's rows are its source points (one per file × segment × offset identity, `identity.py`) and
the compacted points of earlier passes (`storage/compacted.py` says how readers tell them apart and
count each source once). `plan_window` decides, from the rows alone, the next compacted point (the
newest complete generation merged with every source it does not cover: numbers added, histograms
merged exactly with `LatencyHistogram.merge_many`, fleet tables added per customer) and whether the
window's covered sources and older generations may be deleted. The I/O (reads, writes, deletes and
their order) is in `compactor.py`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from logpulse.model import RollupPoint
from logpulse.storage import compacted, fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import RollupLevel

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Row:
    """One stored rollup point of a window, as read back."""

    time_ns: int
    count: int | None
    failed: int | None
    server_errors: int | None
    sum_s: float | None
    hist: str | None
    tables: tuple[str, ...] = ()
    generation_tag: str | None = None  # the `compacted` tag (None: a source point)
    covers: str | None = None

    @property
    def is_compacted(self) -> bool:
        return self.generation_tag is not None

    @property
    def complete(self) -> bool:
        return None not in (self.count, self.failed, self.sum_s, self.hist)


@dataclass(slots=True)
class WindowPlan:
    """What a pass does to one customer-window."""

    customer: str
    window_start: int
    write: RollupPoint | None = None
    covers: str = ""
    generation: int = 0
    """The generation that stands once `write` (if any) is acknowledged."""
    deletable: bool = False
    """Every source present is covered by the standing generation (none grew after it was compacted)."""
    old_generations: bool = False
    grown: list[int] = field(default_factory=list)


def standing_of(rows: list[Row]) -> tuple[Row | None, dict[int, int]]:
    """A customer-window's standing generation (its newest complete compacted row, as readers take it)
    and the sources it covers ({offset: count when compacted})."""
    candidates = (r for r in rows if r.is_compacted and r.complete and r.covers)
    standing = max(candidates, key=lambda r: r.time_ns, default=None)
    return standing, compacted.decode_covers(standing.covers or "") if standing is not None else {}


def plan_window(customer: str, level: RollupLevel, window_start: int, rows: list[Row]) -> WindowPlan | None:
    """The plan of one window, or None when there is nothing to do (a single source, or a window
    already in its compacted state)."""
    plan = WindowPlan(customer, window_start)
    marked = [r for r in rows if r.is_compacted]
    standing, covered = standing_of(rows)
    sources = [r for r in rows if not r.is_compacted]
    new, grown = [], []
    for r in sources:
        offset = r.time_ns - window_start
        if offset not in covered:
            new.append(r)
        elif (r.count or 0) > covered[offset]:
            grown.append(offset)
    plan.grown = grown
    if grown:
        log.warning(
            "%s %s window %d: %d compacted source(s) grew after compaction (lines later than "
            "COMPACTION_LATENESS_S in a segment already compacted): those lines are not counted",
            level.measurement,
            customer,
            window_start,
            len(grown),
        )
    if any(r.time_ns - window_start < compacted.MAX_GENERATIONS for r in new):
        return None  # a source inside the generations' millisecond (odds ~1e-6): left as it is
    if new and (standing is not None or len(new) > 1):
        parts = ([standing] if standing is not None else []) + new
        if not all(r.complete and r.server_errors is not None for r in parts):
            return None  # a point still being written, or one without a 5xx count: next pass
        generation = 1 + max((r.time_ns - window_start for r in marked), default=-1)
        if generation >= compacted.MAX_GENERATIONS:
            return None
        plan.write = merged(customer, level, window_start + generation, parts)
        offsets = dict(covered)
        offsets.update({r.time_ns - window_start: r.count or 0 for r in new})
        plan.covers = compacted.encode_covers(list(offsets), list(offsets.values()))
        plan.generation = generation
        plan.deletable = not grown
        plan.old_generations = bool(marked)
        return plan
    if standing is None or new:
        return None
    plan.generation = standing.time_ns - window_start
    plan.deletable = not grown and bool(sources)
    plan.old_generations = len(marked) > 1
    return plan if plan.deletable or plan.old_generations else None


def merged(customer: str, level: RollupLevel, time_ns: int, rows: list[Row]) -> RollupPoint:
    hist = LatencyHistogram.merge_many(r.hist or "" for r in rows)
    return RollupPoint(
        level.measurement,
        customer,
        time_ns,
        level.window_ns,
        sum(r.count or 0 for r in rows),
        sum(r.failed or 0 for r in rows),
        sum(r.server_errors or 0 for r in rows),
        sum(round((r.sum_s or 0.0) * 1e9) for r in rows),
        hist.encode(),
        _merged_tables(rows),
    )


def _merged_tables(rows: list[Row]) -> tuple[str, ...]:
    """The fleet-wide points' per-customer tables added up (empty for customers' points). A part
    that cannot be decoded (an overflow) makes the merged point overflow too, so readers fall back
    as they would have for its sources."""
    texts = [t for r in rows for t in r.tables if t]
    if not texts:
        return ()
    try:
        table = fleet_table.decode_many(texts)
    except fleet_table.TableDecodeError:
        return (fleet_table.OVERFLOW,) + ("",) * (fleet_table.PARTS - 1)
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for c, n, f, e, s in zip(
        table.customers,
        table.count.tolist(),
        table.failed.tolist(),
        table.server_errors.tolist(),
        table.sum_ns.tolist(),
        strict=True,
    ):
        a = acc[c]
        a[0] += n
        a[1] += f
        a[2] += max(e, 0)
        a[3] += s
        a[4] |= e < 0
    return fleet_table.encode_parts([(c, a[0], a[1], None if a[4] else a[2], a[3]) for c, a in acc.items()])
