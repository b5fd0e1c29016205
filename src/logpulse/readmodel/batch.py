"""Several reads in one /query request, each reader getting back exactly the results of its statements.

An HTTP round trip to InfluxDB costs the API ~0.8 ms of CPU (httpx), a sixth of a cold 30-day stats
answer, so the reads of one answer (its rollup windows, its incidents, its SLO day counts) go out
together. InfluxDB answers one result per statement, in order; a `Handle` remembers which slice of
them belongs to whom, so no reader decodes another's results by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logpulse.storage.influx import AsyncInfluxQuery, InfluxError


@dataclass
class Handle:
    """The results of the statements one reader added (available after `QueryBatch.send`)."""

    batch: QueryBatch
    first: int
    count: int

    @property
    def results(self) -> list[dict[str, Any]]:
        """One result per statement added, in the order they were added."""
        if self.batch.results is None:
            raise RuntimeError("the batch has not been sent yet")
        return self.batch.results[self.first : self.first + self.count]


@dataclass
class QueryBatch:
    """Statements collected from several readers, sent as one request."""

    statements: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] | None = None

    def add(self, statements: list[str]) -> Handle:
        """Queue statements (each one InfluxQL statement, no `;`); their results come back on the handle."""
        handle = Handle(self, len(self.statements), len(statements))
        self.statements.extend(statements)
        return handle

    async def send(self, client: AsyncInfluxQuery) -> None:
        """Send every statement in one request (none: no request); InfluxError when the count of results
        does not match the count of statements."""
        if not self.statements:
            self.results = []
            return
        results = await client.query("; ".join(self.statements))
        if len(results) != len(self.statements):
            raise InfluxError(f"InfluxDB answered {len(results)} results to {len(self.statements)} statements")
        self.results = results
