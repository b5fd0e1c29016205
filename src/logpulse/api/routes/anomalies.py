"""Incidents: of one customer, and of the whole fleet with filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from logpulse.api import validation
from logpulse.api.deps import PROTECTED, CustomerIdDep, DateRangeDep, ServiceDep
from logpulse.api.errors import RESPONSES
from logpulse.model import INCIDENT_KINDS, INCIDENT_STATUSES
from logpulse.readmodel.schemas import Anomalies, FleetAnomalies

router = APIRouter(tags=["customers"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/customers/{customer_id}/anomalies",
    response_model_by_alias=True,
    summary="Incidents of one customer",
)
async def anomalies(r: DateRangeDep, customer_id: CustomerIdDep, service: ServiceDep) -> Anomalies:
    return await service.anomalies(customer_id, r)


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise validation.BadRequest(f"invalid '{name}' {value[:40]!r}: expected one of {', '.join(allowed)}")
    return value


@router.get(
    "/anomalies",
    response_model_by_alias=True,
    tags=["incidents"],
    summary="Incidents of every customer, filtered",
)
async def fleet_anomalies(
    r: DateRangeDep,
    service: ServiceDep,
    status: Annotated[str | None, Query(description="open | resolved")] = None,
    kind: Annotated[str | None, Query(description=" | ".join(INCIDENT_KINDS))] = None,
    customer_id: Annotated[str | None, Query(description="Only this customer")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="At most this many incidents (oldest first)")] = 1000,
) -> FleetAnomalies:
    """Incidents that started between `from` and `to` (local days of `tz`), oldest first."""
    return await service.fleet_anomalies(
        r,
        validation.customer_id(customer_id) if customer_id is not None else None,
        _one_of("kind", kind, INCIDENT_KINDS),
        _one_of("status", status, INCIDENT_STATUSES),
        limit,
    )
