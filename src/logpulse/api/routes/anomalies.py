"""Incidents of one customer."""

from __future__ import annotations

from fastapi import APIRouter

from logpulse.api.deps import PROTECTED, CustomerIdDep, DateRangeDep, ServiceDep
from logpulse.api.errors import RESPONSES
from logpulse.api.schemas import Anomalies

router = APIRouter(tags=["customers"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/customers/{customer_id}/anomalies",
    response_model_by_alias=True,
    summary="Incidents of one customer",
)
async def anomalies(r: DateRangeDep, customer_id: CustomerIdDep, service: ServiceDep) -> Anomalies:
    return await service.anomalies(customer_id, r)
