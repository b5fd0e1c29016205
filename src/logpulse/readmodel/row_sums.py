"""Per-customer sums of rollup rows added up here, for ranges holding compacted points.

The fleet view adds every customer's numbers inside InfluxDB (`SUM(...) GROUP BY customer_id`) when the
fleet-wide tables cannot answer. Such a sum cannot leave out the source points a compacted point
covers (`storage/compacted.py`: while compaction deletes them, after a crash, after a compacted file is
ingested again), so where the range holds a compacted point the rows are read and counted as every
other reader counts them. Ranges without one keep the cheaper sums in InfluxDB.
"""

from __future__ import annotations

import asyncio

from logpulse.readmodel import influxql
from logpulse.readmodel.counting import OpenWindows, counted_read
from logpulse.readmodel.plan import Plan
from logpulse.storage.influx import AsyncInfluxQuery, series_rows
from logpulse.storage.points import RollupLevel


async def holds_compacted(client: AsyncInfluxQuery, p: Plan, levels: tuple[RollupLevel, ...]) -> bool:
    """Does any planned range hold a compacted point?"""
    statements = [s for lvl in levels for s in influxql.compacted_count_statements(lvl, p.ranges(lvl))]
    if not statements:
        return False
    results = await client.query("; ".join(statements))
    return any(row for result in results for _, row in series_rows(result))


async def sums(
    client: AsyncInfluxQuery,
    p: Plan,
    levels: tuple[RollupLevel, ...],
    fields: tuple[str, ...],
    open_windows: OpenWindows,
) -> dict[str, list[float]]:
    """{customer: [sum of each field ..., rows, rows with each field ...]} over the plan's runs (`covers`
    read at once in the windows that can still be open)."""
    used = [lvl for lvl in levels if p.runs.get(lvl)]
    statements = [open_windows.statements(lvl, p.ranges(lvl), None, fields) for lvl in used]
    results = await asyncio.gather(*(client.query("; ".join(s)) for s in statements))
    out: dict[str, list[float]] = {}
    for level, level_results in zip(used, results, strict=True):
        rows = await counted_read(client, level_results, level, None, fields, p)
        columns = [rows.cols[f] for f in fields]
        for i, customer in enumerate(rows.customers):
            acc = out.setdefault(customer, [0.0] * (2 * len(fields) + 1))
            for j, column in enumerate(columns):
                value = column[i]
                acc[j] += value or 0
                acc[len(fields) + 1 + j] += value is not None
            acc[len(fields)] += 1
    return out
