"""The fleet view: every customer's numbers over a range in one request, sorted and paged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from logpulse.api import params as rollup_params
from logpulse.api.deps import PROTECTED, FleetDateRangeDep, RollupsDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.schemas import Fleet

router = APIRouter(tags=["fleet"], dependencies=PROTECTED, responses=RESPONSES)


@dataclass(frozen=True)
class Page:
    """Which page of the fleet, in which order: sort key and order validated (422 otherwise)."""

    sort: str
    order: str
    limit: int
    cursor: str | None


async def page(
    sort: Annotated[
        str,
        Query(
            description=(
                "customer_id, total_requests, failed_requests, uptime, median_latency, p99_latency or "
                "error_budget_remaining"
            )
        ),
    ] = "customer_id",
    order: Annotated[str, Query(description="asc or desc (ties: customer id ascending)")] = "asc",
    limit: Annotated[int, Query(ge=1, le=1000, description="Customers per page")] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")] = None,
) -> Page:
    return Page(rollup_params.sort_key(sort), rollup_params.order(order), limit, cursor)


@router.get("/stats", response_model_by_alias=True, summary="Every customer's numbers over a range")
async def fleet(r: FleetDateRangeDep, rollups: RollupsDep, p: Annotated[Page, Depends(page)]) -> Fleet:
    return await rollups.fleet(r, p.sort, p.order, p.limit, p.cursor)
