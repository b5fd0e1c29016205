"""Daily service-level numbers of one customer."""

from __future__ import annotations

from fastapi import APIRouter

from logpulse.api.deps import PROTECTED, CustomerIdDep, DateRangeDep, ServiceDep
from logpulse.api.errors import RESPONSES
from logpulse.api.schemas import Stats

router = APIRouter(tags=["customers"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/customers/{customer_id}/stats",
    response_model_by_alias=True,
    summary="Daily service-level numbers of one customer",
)
async def stats(r: DateRangeDep, customer_id: CustomerIdDep, service: ServiceDep) -> Stats:
    return await service.stats(customer_id, r)
