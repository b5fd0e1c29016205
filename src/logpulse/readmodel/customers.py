"""Customers and their incidents: the known customers (refreshed at most every KNOWN_REFRESH_S), the
paged customer list, one customer's and the whole fleet's incidents. Raises NotFound / BadRequest
(`readmodel.errors`); InfluxDB errors pass through."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from typing import Any

from logpulse.formats.logpulse import CUSTOMER_ID_RE
from logpulse.readmodel import influxql
from logpulse.readmodel.batch import QueryBatch
from logpulse.readmodel.cache import EVERY_CUSTOMER, AnswerCache
from logpulse.readmodel.errors import BadRequest, NotFound
from logpulse.readmodel.localtime import DateRange
from logpulse.readmodel.schemas import (
    Anomalies,
    Anomaly,
    Customer,
    CustomerPage,
    FleetAnomalies,
    FleetAnomaly,
)
from logpulse.storage.influx import AsyncInfluxQuery, series_rows
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS

KNOWN_REFRESH_S = 1.0


def _iso(ns: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz).isoformat()


def _incident(tags: dict[str, str], row: dict[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    """An `anomalies` point as Anomaly fields (older points lack the lifecycle fields: None)."""
    return {
        "kind": tags["kind"],
        "start": _iso(row["time"], tz),
        "end": _iso(row["end"], tz),
        "score": row["score"],
        "requests": row["requests"],
        "id": row.get("id"),
        "status": row.get("status"),
        "ended": _iso(row["ended"], tz) if row.get("ended") is not None else None,
        "summary": row.get("summary"),
        "detected": _iso(row["detected"], tz) if row.get("detected") else None,
    }


class Service:
    """Shared by the routes: one InfluxDB client, the cache and the set of known customers."""

    def __init__(self, client: AsyncInfluxQuery, cache: AnswerCache) -> None:
        self.client = client
        self.cache = cache
        self._known: set[str] = set()
        self._known_at = 0.0

    async def known_customers(self, *, refresh: bool = False) -> list[str]:
        if refresh or time.monotonic() - self._known_at > KNOWN_REFRESH_S:
            res = await self.client.query(influxql.customer_ids())
            self._known = {row["value"] for _, row in series_rows(res[0])} - {FLEET_CUSTOMER}
            self._known_at = time.monotonic()
        return sorted(self._known)

    async def require_customer(self, customer: str) -> None:
        if customer in self._known:
            return
        if customer not in await self.known_customers(refresh=True):
            raise NotFound(f"unknown customer {customer!r}: no requests stored for it")

    async def anomalies(self, customer: str, r: DateRange) -> Anomalies:
        await self.require_customer(customer)
        res = await self.client.query(influxql.anomalies(customer, r))
        items = [
            Anomaly(**_incident(tags, row, r.tz))  # the query groups by the kind tag
            for tags, row in sorted(series_rows(res[0]), key=lambda tr: (tr[1]["time"], tr[0]["kind"]))
        ]
        return Anomalies(
            customer_id=customer, from_=r.first.isoformat(), to=r.last.isoformat(), tz=r.tz.key, anomalies=items
        )

    async def fleet_anomalies(
        self, r: DateRange, customer: str | None, kind: str | None, status: str | None, limit: int
    ) -> FleetAnomalies:
        """Incidents of every customer, the filters applied in InfluxDB."""
        res = await self.client.query(influxql.fleet_anomalies(r, customer, kind, status, limit))
        rows = sorted(series_rows(res[0]), key=lambda tr: (tr[1]["time"], tr[0]["customer_id"], tr[0]["kind"]))
        items = [FleetAnomaly(customer_id=tags["customer_id"], **_incident(tags, row, r.tz)) for tags, row in rows]
        return FleetAnomalies(from_=r.first.isoformat(), to=r.last.isoformat(), tz=r.tz.key, anomalies=items[:limit])

    async def customers(self, limit: int, cursor: str | None) -> CustomerPage:
        after = decode_cursor(cursor) if cursor else None

        async def compute() -> tuple[CustomerPage, str, int, int]:
            ids = await self.known_customers(refresh=True)
            page = [c for c in ids if after is None or c > after][:limit]
            out = []
            if page:
                batch = QueryBatch()
                summaries = [batch.add(influxql.customer_summary(c)) for c in page]
                await batch.send(self.client)
                for c, summary in zip(page, summaries, strict=True):
                    total, first, last = (series_rows(result) for result in summary.results)
                    out.append(
                        Customer(
                            customer_id=c,
                            first_request=_iso(first[0][1]["time"], dt.UTC) if first else None,
                            last_request=_iso(last[0][1]["time"], dt.UTC) if last else None,
                            total_requests=int(total[0][1]["total"]) if total else 0,
                        )
                    )
                out = await self._from_rollups(out)
            more = bool(page) and any(c > page[-1] for c in ids)
            answer = CustomerPage(customers=out, next_cursor=encode_cursor(page[-1]) if more else None)
            return answer, EVERY_CUSTOMER, 0, 2**63 - 1

        return await self.cache.fetch(("customers", limit, after), compute)

    async def _from_rollups(self, customers: list[Customer]) -> list[Customer]:
        """Customers without raw points (STORE_RAW=false) get their total from the rollups, and first
        and last request to 15 minutes: the start of their first window with requests and the last
        second of their last one."""
        bare = [c.customer_id for c in customers if c.total_requests == 0]
        if not bare:
            return customers
        batch = QueryBatch()
        summaries = [batch.add(influxql.rollup_customer_summary(c)) for c in bare]
        await batch.send(self.client)
        window = ROLLUP_LEVELS[0].window_ns
        found: dict[str, Customer] = {}
        for c, summary in zip(bare, summaries, strict=True):
            total, first, last = (series_rows(result) for result in summary.results)
            if total and first and last:
                start, end = int(first[0][1]["time"]), int(last[0][1]["time"])
                found[c] = Customer(
                    customer_id=c,
                    first_request=_iso(start - start % window, dt.UTC),
                    last_request=_iso(end - end % window + window - 1_000_000_000, dt.UTC),
                    total_requests=int(total[0][1]["total"]),
                )
        return [found.get(c.customer_id, c) for c in customers]


def encode_cursor(customer: str) -> str:
    return base64.urlsafe_b64encode(customer.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not CUSTOMER_ID_RE.match(value):  # the same rule as the customer id parameter
            raise ValueError
        return value
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("invalid cursor: pass the next_cursor of a previous page") from None
