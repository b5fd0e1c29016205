"""The API's routes, one module per resource, each with a module-level `router = APIRouter(...)`.

To add an endpoint to a resource, add it to that module. To add a resource, create
`routes/<resource>.py` with a `router` and add it to ROUTERS below (kept in alphabetical order).
"""

from __future__ import annotations

from fastapi import APIRouter

from logpulse.api.routes import (
    anomalies,
    customers,
    dashboard,
    docs,
    fleet,
    freshness,
    health,
    ingest,
    series,
    stats,
)

ROUTERS: tuple[APIRouter, ...] = (
    anomalies.router,
    customers.router,
    dashboard.router,
    docs.router,
    fleet.router,
    freshness.router,
    health.router,
    ingest.router,
    series.router,
    stats.router,
)
