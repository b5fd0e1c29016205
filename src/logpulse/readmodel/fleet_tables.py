"""Every customer's numbers over a range from the packed tables of the fleet-wide rollup points.

`GET /stats` needs count, failed, sum (and for SLO budgets server errors) of every customer. Summing
them in InfluxDB (`SUM(...) GROUP BY customer_id`) reads one series per customer and pays per series
and per shard (375–475 ms for 1,000 customers × 30 days of `rollups_1d` on the loaded 2-core machine).
The processor also writes, on each `*` point, the per-customer numbers of that identity-window
(`storage/fleet_table.py`), so the same answer is one series read plus a numpy pass here.

The tables are used only when they provably hold every request of the range: the `*` points' counts
must equal the sum of their tables (no point without a table or with an overflowing part) and the
ungrouped sum of every customer's points (data written before the `*` points existed lacks them).
Otherwise `None`, and the caller sums per customer in InfluxDB as before.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from logpulse.readmodel import influxql
from logpulse.readmodel.counting import counted_read
from logpulse.readmodel.plan import Plan
from logpulse.storage import fleet_table
from logpulse.storage.influx import AsyncInfluxQuery, series_rows
from logpulse.storage.points import FLEET_CUSTOMER, RollupLevel

_FIELDS = ("count", *fleet_table.FIELDS)


@dataclass
class CustomerSums:
    """Per customer (sorted ids), the numbers of the range."""

    customers: list[str]
    count: np.ndarray
    failed: np.ndarray
    seconds: np.ndarray  # sum of durations
    server_errors: np.ndarray  # of the entries whose 5xx count is known
    unknown: np.ndarray  # entries without a 5xx count (aggregates restored from an older snapshot)


async def customer_sums(client: AsyncInfluxQuery, p: Plan, levels: tuple[RollupLevel, ...]) -> CustomerSums | None:
    """Every customer's sums over the plan's runs from the `*` tables, or None if they are incomplete.

    A live processor writes a window's `*` point and its customers' points in separate requests, and
    InfluxDB stores a point's fields one by one, so a read racing a flush can find counts that
    disagree (2 of 30 fleet answers beside a processor writing every customer each second), and the
    caller's fallback sums every customer in InfluxDB (seconds for a month of 1,200). Tables found
    incomplete are therefore read once more before that."""
    found = await _read_sums(client, p, levels)
    return found if found is not None else await _read_sums(client, p, levels)


async def _read_sums(client: AsyncInfluxQuery, p: Plan, levels: tuple[RollupLevel, ...]) -> CustomerSums | None:
    used = [lvl for lvl in levels if p.runs.get(lvl)]
    if not used:
        return CustomerSums([], *(np.zeros(0, np.int64) for _ in range(5)))
    statements = ["; ".join(influxql.windows_statements(lvl, p.runs[lvl], FLEET_CUSTOMER, _FIELDS)) for lvl in used]
    statements += ["; ".join(influxql.customers_count_statements(lvl, p.runs[lvl])) for lvl in used]
    results = await asyncio.gather(*(client.query(q) for q in statements))
    tables, checks = results[: len(used)], results[len(used) :]
    fleet_count = 0
    texts: list[str] = []
    for level, res in zip(used, tables, strict=True):
        rows = await counted_read(client, res, level, FLEET_CUSTOMER, _FIELDS)
        for i, count in enumerate(rows.cols["count"]):
            parts = [rows.cols[f][i] for f in fleet_table.FIELDS if rows.cols[f][i]]
            if count and not parts:
                return None  # a `*` point without a table (written before tables existed)
            fleet_count += int(count or 0)
            texts += parts
    customers_count = sum(int(row.get("count") or 0) for res in checks for r in res for _, row in series_rows(r))
    if customers_count != fleet_count:
        return None
    try:
        table = fleet_table.decode_many(texts)
    except fleet_table.TableDecodeError:
        return None  # an overflowing part (tens of thousands of customers in one window)
    if int(table.count.sum()) != fleet_count:
        return None
    order = list(dict.fromkeys(table.customers))  # distinct ids, first-seen order (C loops, no call per id)
    index = {c: i for i, c in enumerate(order)}
    codes = np.fromiter(map(index.__getitem__, table.customers), np.int64, len(table.customers))
    n = len(order)

    def add(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    known = table.server_errors >= 0
    by_id = np.argsort(np.asarray(order, dtype=object)) if n else np.zeros(0, np.int64)
    return CustomerSums(
        [order[i] for i in by_id],
        add(table.count).astype(np.int64)[by_id],
        add(table.failed).astype(np.int64)[by_id],
        (np.bincount(codes, weights=table.sum_ns, minlength=n) / 1e9)[by_id],
        add(np.where(known, table.server_errors, 0)).astype(np.int64)[by_id],
        add(~known).astype(np.int64)[by_id],
    )


class TableReads:
    """One answer's table reads: the range and the SLO window are often the same plan (a 30-day range,
    a 30-day SLO window): read once, await twice."""

    def __init__(self, client: AsyncInfluxQuery, levels: tuple[RollupLevel, ...]) -> None:
        self.client = client
        self.levels = levels
        self._reads: dict[tuple[tuple[str, tuple[tuple[int, int], ...]], ...], asyncio.Future[CustomerSums | None]] = {}

    def sums(self, p: Plan) -> asyncio.Future[CustomerSums | None]:
        key = tuple((lvl.measurement, tuple(runs)) for lvl, runs in p.runs.items() if runs)
        if key not in self._reads:
            self._reads[key] = asyncio.ensure_future(customer_sums(self.client, p, self.levels))
        return self._reads[key]
