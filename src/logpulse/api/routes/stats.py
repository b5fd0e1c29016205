"""Daily service-level numbers of one customer, from rollups (raw points on request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from logpulse.api.deps import PROTECTED, CustomerIdDep, DateRangeDep, RollupsDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.schemas import Stats

router = APIRouter(tags=["customers"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/customers/{customer_id}/stats",
    response_model_by_alias=True,
    summary="Daily service-level numbers of one customer",
)
async def stats(
    r: DateRangeDep,
    customer_id: CustomerIdDep,
    rollups: RollupsDep,
    exact: Annotated[
        bool,
        Query(
            description="When a quantile had to be approximate, recompute from the raw request points "
            "(422 if they are not all stored: STORE_RAW=false or RAW_RETENTION)"
        ),
    ] = False,
) -> Stats:
    return await rollups.stats(customer_id, r, exact=exact)
