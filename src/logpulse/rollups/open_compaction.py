"""Compaction of open rollup windows: what a pass merges and deletes in a window that can still get lines.

A window is open until its end + `COMPACTION_LATENESS_S`: a source of a segment still being read keeps
growing, and a covered source that grows is ignored by readers (`storage/compacted.py`). But the
sources of **sealed** identities (`storage/seals.py`) cannot change any more, so they may be merged
while the window is open; the others stay beside the compacted point, counted by readers because it
does not cover them, until they are sealed in turn or the window closes (`compaction.plan_window`).

Per open window, across its customers (the fleet-wide `*` points among them):

* **merge** (`plan_open_window`) once the window holds at least `min_sealed` sealed identities not yet
  merged — so a window gets a new generation when that removes a batch of rows, not whenever one more
  segment closes. Every customer with a generation or a sealed source gets the *same* new generation
  number: its standing generation merged with its uncovered sealed sources, or, with none, a copy of
  its standing one. One generation number per window lets one DELETE per window remove the older
  generations of every customer.
* **delete** (`open_deletes`, from a read made after the writes were acknowledged) the sources of a
  sealed identity at their exact time (`time = window start + offset`, every customer at once), only
  when every customer's source at that time is covered by that customer's standing generation and has
  not grown. No DELETE ever spans a time range that could hold another identity's point: an unsealed
  source, or a new identity written meanwhile, is never removed. A sealed identity gets no new point
  after its seal (its points were acknowledged before it), only rewrites of the same values, which the
  standing generation covers and the next pass deletes again. Older generations go by time range in the
  generations' own series (`compacted = '1'`), below the lowest standing generation of the window, and
  per customer above it; only the compactor writes that series.
"""

from __future__ import annotations

from collections import defaultdict

from logpulse.model import RollupPoint
from logpulse.rollups.compaction import Row, merged, standing_of
from logpulse.storage import compacted
from logpulse.storage.influx import quote_ident, quote_literal
from logpulse.storage.points import TAG_CUSTOMER, RollupLevel
from logpulse.storage.seals import Seals

Windows = dict[int, dict[str, list[Row]]]
"""Rows of a chunk by window start, then customer."""


def by_window(rows: dict[str, list[Row]], window_ns: int) -> Windows:
    out: Windows = defaultdict(lambda: defaultdict(list))
    for customer, customer_rows in rows.items():
        for r in customer_rows:
            out[r.time_ns - r.time_ns % window_ns][customer].append(r)
    return out


def _uncovered_sealed(start: int, rows: list[Row], covered: dict[int, int], seals: Seals) -> list[Row]:
    return [
        r for r in rows if not r.is_compacted and (o := r.time_ns - start) not in covered and seals.sealed(start, o)
    ]


def plan_open_window(
    level: RollupLevel, start: int, customers: dict[str, list[Row]], seals: Seals, min_sealed: int
) -> list[tuple[RollupPoint, str]]:
    """The generations one open window gets (module docstring); [] when it waits or must be left alone."""
    rows = [r for rs in customers.values() for r in rs]
    if any(not r.is_compacted and r.time_ns - start < compacted.MAX_GENERATIONS for r in rows):
        return []  # a source inside the generations' millisecond (odds ~1e-6): left as it is
    standing = {c: standing_of(rs) for c, rs in customers.items()}
    new = {c: _uncovered_sealed(start, rs, standing[c][1], seals) for c, rs in customers.items()}
    if len({r.time_ns for rs in new.values() for r in rs}) < min_sealed:
        return []
    generation = 1 + max((r.time_ns - start for r in rows if r.is_compacted), default=-1)
    if generation >= compacted.MAX_GENERATIONS:
        return []
    out = []
    for customer, (stand, covered) in standing.items():
        parts = ([stand] if stand is not None else []) + new[customer]
        if not parts:
            continue
        if not all(r.complete and r.server_errors is not None for r in parts):
            continue  # a point still being written, or one without a 5xx count: next pass
        offsets = dict(covered)
        offsets.update({r.time_ns - start: r.count or 0 for r in new[customer]})
        point = merged(customer, level, start + generation, parts)
        out.append((point, compacted.encode_covers(list(offsets), list(offsets.values()))))
    return out


def open_deletes(level: RollupLevel, start: int, customers: dict[str, list[Row]], seals: Seals) -> list[str]:
    """DELETE statements of one open window, from rows read after the writes (module docstring)."""
    m, tag = quote_ident(level.measurement), quote_ident(compacted.TAG)
    sources, generations = f"{m} WHERE {tag} = ''", f"{m} WHERE {tag} = {quote_literal(compacted.TAG_VALUE)}"
    removable: dict[int, bool] = {}
    standing_generation: dict[str, int] = {}
    for customer, rows in customers.items():
        stand, covered = standing_of(rows)
        if stand is not None:
            standing_generation[customer] = stand.time_ns - start
        elif any(r.is_compacted for r in rows):
            return []  # generations but none complete: a write under way or cut short, next pass
        for r in rows:
            o = r.time_ns - start
            if not r.is_compacted:
                ok = o in covered and (r.count or 0) <= covered[o] and seals.sealed(start, o)
                removable[o] = removable.get(o, True) and ok
    out = [f"DELETE FROM {sources} AND time = {start + o}" for o, ok in sorted(removable.items()) if ok]
    if not standing_generation:
        return out
    lowest = min(standing_generation.values())
    older = [(c, r.time_ns - start) for c, rows in customers.items() for r in rows if r.is_compacted]
    if any(g < lowest for _, g in older):
        out.append(f"DELETE FROM {generations} AND time >= {start} AND time < {start + lowest}")
    for customer in sorted({c for c, g in older if lowest <= g < standing_generation[c]}):
        who = f"{quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)}"
        out.append(
            f"DELETE FROM {generations} AND {who} AND time >= {start + lowest} "
            f"AND time < {start + standing_generation[customer]}"
        )
    return out
