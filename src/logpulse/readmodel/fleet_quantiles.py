"""Every customer's median and p99 over a range, for the fleet sorted by them: whole days from the day
replica, the rest of the range (the hours of partial local days at its edges) read as before.

The plan (`plan.plan`) covers the range with the coarsest windows that fit: the 1d level's runs are
whole UTC days, which the replica holds; the finer levels' runs (a zone whose midnight is not UTC's)
are read from InfluxDB as any answer reads them (`RollupService._read`, finer re-reads of approximate
windows included) and packed into one more table for the same rank search. A customer some of whose
rows are not exact histograms is left to the caller, who merges its rollup rows as without a replica
(the same definition of "approximate").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from logpulse.readmodel.day_replica import DAY_NS, DayReplica
from logpulse.readmodel.day_tables import DayTable, Quantiles, quantiles
from logpulse.readmodel.localtime import IntArray
from logpulse.readmodel.merge import Decoded, merge
from logpulse.readmodel.plan import Plan, plan
from logpulse.readmodel.windows import Windows
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel


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
        for row in rows:
            customer = row["customer_id"]
            code = self.codes.get(customer, -1)
            i = int(np.searchsorted(q.codes, code))
            if i >= len(q.codes) or q.codes[i] != code:  # no rows in the range: as `merge` of no rows
                out.append({**row, "median_latency": None, "p99_latency": None, "quantiles": "approximate"})
                continue
            if not q.exact[i]:
                others.append(customer)
                out.append(row)
                continue
            median, p99 = float(q.median[i]), float(q.p99[i])
            out.append(
                {
                    **row,
                    "median_latency": None if np.isnan(median) else median,
                    "p99_latency": None if np.isnan(p99) else p99,
                    "quantiles": "exact" if q.count[i] else "approximate",
                }
            )
        return out, others


def split(p: Plan, day_level: RollupLevel) -> tuple[list[int], Plan]:
    """(the whole days the plan reads at the 1d level, the plan of everything else)."""
    days = [s for a, b in p.runs.get(day_level, []) for s in range(a, b, DAY_NS)]
    rest = Plan({lvl: ([] if lvl is day_level else runs) for lvl, runs in p.runs.items()})
    return days, rest


async def replicated(
    replica: DayReplica,
    bounds: IntArray,
    levels: tuple[RollupLevel, ...],
    read: Callable[[Plan], Awaitable[Windows]],
) -> Replicated | None:
    """Every customer's quantiles over [bounds[0], bounds[-1]), or None when the replica declines (not
    trusted, over its entries cap); `read` reads a plan's rows of every customer (count and hist)."""
    days, rest = split(plan(bounds, levels), replica.level)
    tables, edges = await asyncio.gather(replica.tables(days), read(rest))
    if tables is None:
        return None
    keep = [i for i, c in enumerate(edges.customer) if c != FLEET_CUSTOMER]
    edge = DayTable.build(
        np.asarray([replica.code(edges.customer[i]) for i in keep], np.int64),
        edges.count[keep],
        [edges.hist[i] for i in keep],
    )
    return Replicated(replica.codes, quantiles([*tables, edge]))


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
