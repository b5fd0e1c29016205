"""Response models (with OpenAPI examples): the API's contract. The error body is errors.Problem."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Figures(BaseModel):
    total_requests: int = Field(description="Requests in the period")
    successful_requests: int = Field(description="Requests with status < 400")
    failed_requests: int = Field(description="Requests with status >= 400")
    uptime: float | None = Field(description="successful / total x 100 (null without requests)")
    average_latency: float | None = Field(description="Arithmetic mean of durations, seconds")
    median_latency: float | None = Field(description="Middle duration; mean of the two middle ones for even n")
    p99_latency: float | None = Field(
        description="Duration at 1-based rank floor(0.99 n + 0.5) of the sorted durations"
    )
    quantiles: str = Field(
        "exact",
        description="exact: median and p99 equal the sort-based definitions; approximate: within 0.5% (relative)",
    )


_BUDGET = (
    "Fraction of the error budget left in the SLO window (the last SLO_WINDOW_DAYS local days ending with {end}): "
    "1 - (5xx / requests in the window) / (1 - slo_target/100); 1 = nothing spent, below 0 = overspent; "
    "1 when the window has no requests; null without an SLO target or when a rollup point of the window "
    "predates the 5xx count"
)


class Day(Figures):
    date: str = Field(description="Calendar day in the requested time zone")
    anomalies: int = Field(description="Incidents of this customer that started that day")
    error_budget_remaining: float | None = Field(description=_BUDGET.format(end="this day"))


class SloFigures(BaseModel):
    """Always present (required, nullable): null says no SLO applies or its budget is unknown."""

    slo_target: float | None = Field(
        description="Availability target in percent (SLO_TARGETS: the customer's own, else default); null: none"
    )
    error_budget_remaining: float | None = Field(description=_BUDGET.format(end="the range's last day"))


class Summary(Figures, SloFigures):
    """The range's figures, and the customer's SLO budget as of the range's last day."""


class Stats(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "example": {
                "customer_id": "cust_1",
                "from": "2024-09-29",
                "to": "2024-09-30",
                "tz": "UTC",
                "days": [
                    {
                        "date": "2024-09-29",
                        "total_requests": 5,
                        "successful_requests": 3,
                        "failed_requests": 2,
                        "uptime": 60.0,
                        "average_latency": 0.84,
                        "median_latency": 0.7,
                        "p99_latency": 1.5,
                        "quantiles": "exact",
                        "anomalies": 0,
                        "error_budget_remaining": 0.62,
                    }
                ],
                "summary": {
                    "total_requests": 5,
                    "successful_requests": 3,
                    "failed_requests": 2,
                    "uptime": 60.0,
                    "average_latency": 0.84,
                    "median_latency": 0.7,
                    "p99_latency": 1.5,
                    "quantiles": "exact",
                    "slo_target": 99.5,
                    "error_budget_remaining": 0.62,
                },
            }
        },
    )

    customer_id: str
    from_: str = Field(alias="from")
    to: str
    tz: str
    days: list[Day]
    summary: Summary


class Anomaly(BaseModel):
    kind: str = Field(description="latency | errors | traffic_drop | traffic_surge | slo_burn")
    start: str = Field(description="ISO-8601, in the requested time zone: when the change began")
    end: str = Field(description="End of the last anomalous bucket so far")
    score: float = Field(description="Peak evidence: -log10 of the strongest test's p-value (slo_burn: burn rate)")
    requests: int = Field(description="Requests in the incident's anomalous buckets")
    id: str | None = Field(None, description="Stable incident id (the alert's incident_id label)")
    status: str | None = Field(None, description="open | resolved")
    ended: str | None = Field(None, description="When it was resolved (null while open)")
    summary: str | None = Field(None, description="What happened, in words")
    detected: str | None = Field(None, description="Stream time at which it was first reported")


class FleetAnomaly(Anomaly):
    customer_id: str


class FleetAnomalies(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "example": {
                "from": "2024-09-29",
                "to": "2024-09-30",
                "tz": "UTC",
                "anomalies": [
                    {
                        "customer_id": "cust_1",
                        "kind": "latency",
                        "start": "2024-09-29T10:00:00+00:00",
                        "end": "2024-09-29T10:04:30+00:00",
                        "score": 27.5,
                        "requests": 591,
                        "id": "6ecae8f1538621c2",
                        "status": "resolved",
                        "ended": "2024-09-29T10:04:30+00:00",
                        "summary": "latency 0.42 s vs 0.12 s usual (x3.5); 591 requests",
                        "detected": "2024-09-29T10:01:00+00:00",
                    }
                ],
            }
        },
    )

    from_: str = Field(alias="from")
    to: str
    tz: str
    anomalies: list[FleetAnomaly]


class Anomalies(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "example": {
                "customer_id": "cust_1",
                "from": "2024-09-29",
                "to": "2024-09-30",
                "tz": "UTC",
                "anomalies": [
                    {
                        "kind": "latency",
                        "start": "2024-09-29T10:00:00+00:00",
                        "end": "2024-09-29T10:04:30+00:00",
                        "score": 27.5,
                        "requests": 591,
                    }
                ],
            }
        },
    )

    customer_id: str
    from_: str = Field(alias="from")
    to: str
    tz: str
    anomalies: list[Anomaly]


class Customer(BaseModel):
    customer_id: str
    first_request: str | None = Field(description="ISO-8601 UTC, whole seconds")
    last_request: str | None
    total_requests: int


class CustomerPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "customers": [
                    {
                        "customer_id": "cust_1",
                        "first_request": "2024-09-01T00:00:03+00:00",
                        "last_request": "2024-09-30T23:59:58+00:00",
                        "total_requests": 200345,
                    }
                ],
                "next_cursor": "Y3VzdF8x",
            }
        }
    )

    customers: list[Customer]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


# ---- dashboard live status (api/freshness.py) ----


class Freshness(BaseModel):
    last_write: str | None = Field(description="When InfluxDB last acknowledged the processor's data (UTC)")
    newest_data: str | None = Field(description="Newest request time among the writes of the last hour (UTC)")
    lag_s: float | None = Field(description="last_write - newest_data, seconds (large also when the log is quiet)")
    backlog_bytes: int | None = Field(description="Bytes of log the processor had not read at its last write")
    behind: bool = Field(description="backlog_bytes > 1 MiB: the processor has lines it has not read yet")
    checked_at: str = Field(description="When this answer was computed (UTC)")


# ----- rollup routes: series and fleet view ----------------------------------------------------

_FIGURES_EXAMPLE: dict[str, Any] = {
    "total_requests": 1200,
    "successful_requests": 1188,
    "failed_requests": 12,
    "uptime": 99.0,
    "average_latency": 0.212,
    "median_latency": 0.18,
    "p99_latency": 0.97,
    "quantiles": "exact",
}


class Point(Figures):
    start: str = Field(description="Start of the interval, RFC 3339 with the zone's offset at that instant")


class Series(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "customer_id": "cust_1",
                "interval": "1h",
                "tz": "Europe/Berlin",
                "points": [{"start": "2026-11-01T14:00:00+01:00", **_FIGURES_EXAMPLE}],
            }
        }
    )

    customer_id: str
    interval: str = Field(description="15m, 1h or 1d")
    tz: str
    points: list[Point] = Field(description="Intervals with requests, in time order")


class FleetCustomer(Figures, SloFigures):
    customer_id: str


class Fleet(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "example": {
                "from": "2026-10-27",
                "to": "2026-11-25",
                "tz": "UTC",
                "total": _FIGURES_EXAMPLE,
                "customers": [
                    {"customer_id": "cust_1", **_FIGURES_EXAMPLE, "slo_target": 99.5, "error_budget_remaining": 0.62}
                ],
                "next_cursor": None,
            }
        },
    )

    from_: str = Field(alias="from")
    to: str
    tz: str
    total: Figures = Field(description="All customers' requests together")
    customers: list[FleetCustomer]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
