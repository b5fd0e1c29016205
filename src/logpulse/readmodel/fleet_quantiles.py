"""Every customer's median and p99 over a range, for the fleet sorted by them, from the day replica.

The plan (`plan.plan`) covers the range with the coarsest windows that fit: the 1d level's runs are
whole UTC days; the rest (the hours and quarter-hours of partial local days at the edges, in a zone
whose midnight is not UTC's) is read as any answer reads it (`RollupService._read`, finer re-reads of
approximate windows included). The replica holds both, one table per whole day and per edge interval,
for the same rank search. A customer some of whose
rows are not exact histograms is left to the caller, who merges its rollup rows as without a replica
(the same definition of "approximate").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from math import isnan
from typing import Any

import numpy as np

from logpulse.readmodel.day_replica import DAY_NS, DayReplica
from logpulse.readmodel.day_tables import Quantiles
from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.merge import Decoded, merge
from logpulse.readmodel.plan import Plan, plan, plan_ranges
from logpulse.readmodel.windows import Windows
from logpulse.storage.points import RollupLevel


@dataclass
class Replicated:
    """Quantiles of every customer with rows in the range (by replica code)."""

    codes: dict[str, int]
    found: Quantiles

    async def fill(
        self, rows: list[dict[str, Any]], read: Callable[[list[str]], Awaitable[Windows]]
    ) -> list[dict[str, Any]]:
        """The rows with median, p99 and quantiles set; customers some of whose rows are not exact
        histograms merged from their rollup rows (`read`: those customers' rows over the range), as
        without a replica."""
        rows, others = self._fill(rows)
        if not others:
            return rows
        named = set(others)
        merged = {
            row["customer_id"]: row
            for row in with_quantiles(await read(others), [r for r in rows if r["customer_id"] in named])
        }
        return [merged.get(row["customer_id"], row) for row in rows]

    def _fill(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        out: list[dict[str, Any]] = []
        others: list[str] = []
        q = self.found
        position = dict(zip(q.codes.tolist(), range(len(q.codes)), strict=True))
        # per customer (median, p99, label) as Python values, or None when not all exact
        values = [
            None if not exact else (None if isnan(m) else m, None if isnan(p) else p, "exact" if n else "approximate")
            for exact, m, p, n in zip(
                q.exact.tolist(), q.median.tolist(), q.p99.tolist(), q.count.tolist(), strict=True
            )
        ]
        for row in rows:
            i = position.get(self.codes.get(row["customer_id"], -1))
            if i is None:  # no rows in the range: as `merge` of no rows
                out.append({**row, "median_latency": None, "p99_latency": None, "quantiles": "approximate"})
            elif (found := values[i]) is None:
                others.append(row["customer_id"])
                out.append(row)
            else:
                out.append({**row, "median_latency": found[0], "p99_latency": found[1], "quantiles": found[2]})
        return out, others


def split(bounds: IntArray, levels: tuple[RollupLevel, ...]) -> tuple[list[int], list[tuple[int, int]]]:
    """(the whole days the plan reads at the 1d level, the intervals before and after them that the
    finer levels read)."""
    start, end = int(bounds[0]), int(bounds[-1])
    days = [s for a, b in plan(bounds, levels).runs.get(levels[0], []) for s in range(a, b, DAY_NS)]
    if not days:
        return [], [(start, end)]
    edges = [(start, days[0])] if start < days[0] else []
    return days, edges + ([(days[-1] + DAY_NS, end)] if days[-1] + DAY_NS < end else [])


async def replicated(
    replica: DayReplica,
    bounds: IntArray,
    levels: tuple[RollupLevel, ...],
    read: Callable[[Plan, list[str] | None], Awaitable[Windows]],
) -> Replicated | None:
    """Every customer's quantiles over [bounds[0], bounds[-1]), or None when the replica declines (not
    trusted, over its entries cap); `read` reads a plan's rows (count and hist) of the listed customers
    (None: every customer)."""
    days, edges = split(bounds, levels)

    async def read_edge(key: tuple[int, int], who: list[str] | None) -> Windows:
        return await read(plan_ranges([key], levels[1:]), who)

    found = await replica.ranked(days, edges, read_edge)
    return None if found is None else Replicated(replica.codes, found)


def with_quantiles(w: Windows, rows: list[dict[str, Any]], d: Decoded | None = None) -> list[dict[str, Any]]:
    """The rows with median, p99 and quantiles from their customers' merged histograms in `w` (`d`: its
    histograms if already decoded)."""
    index = {row["customer_id"]: i for i, row in enumerate(rows)}
    group = np.asarray([index.get(c, -1) for c in w.customer], np.int64)
    m = merge(w, d or Decoded.of(w.hist), group, len(rows))
    return [
        {
            **row,
            "median_latency": m.median[i],
            "p99_latency": m.p99[i],
            "quantiles": "exact" if m.exact[i] and m.total[i] else "approximate",
        }
        for i, row in enumerate(rows)
    ]
