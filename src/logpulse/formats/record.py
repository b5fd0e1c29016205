"""One line as `logpulse check-format` and `POST /ingest` show it: its fields and what is stored."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from logpulse.model import RequestBatch


@dataclass(frozen=True)
class Stored:
    """The values a line becomes in InfluxDB."""

    time: str  # ISO 8601, UTC
    customer_id: str
    path: str
    status: str
    duration_s: str


@dataclass(frozen=True)
class LineRecord:
    """The fields of a line as the format names them, and the stored values or the reject reason."""

    fields: dict[str, str]
    stored: Stored | None
    reason: str | None

    @classmethod
    def from_batches(cls, fields: dict[str, str], batches: dict[str, RequestBatch], reason: str | None) -> LineRecord:
        """From the batches a single line was parsed into (empty when refused)."""
        for b in batches.values():
            ns = b.times[0]
            when = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).replace(microsecond=(ns // 1000) % 1_000_000)
            stored = Stored(
                when.isoformat().replace("+00:00", "Z"), b.customer_id, b.paths[0], b.statuses[0], b.durations[0]
            )
            return cls(fields, stored, None)
        return cls(fields, None, reason or "unparseable line")
