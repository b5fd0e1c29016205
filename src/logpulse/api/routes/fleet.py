"""The fleet view: every customer's numbers over a range in one request, sorted and paged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from logpulse.api import params as rollup_params
from logpulse.api import validation
from logpulse.api.deps import PROTECTED, RollupsDep, SettingsDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.schemas import Fleet

router = APIRouter(tags=["fleet"], dependencies=PROTECTED, responses=RESPONSES)


@router.get("/stats", response_model_by_alias=True, summary="Every customer's numbers over a range")
async def fleet(
    rollups: RollupsDep,
    settings: SettingsDep,
    from_: Annotated[
        str | None, Query(alias="from", description="First day, YYYY-MM-DD", examples=["2026-11-01"])
    ] = None,
    to: Annotated[str | None, Query(description="Last day (inclusive), YYYY-MM-DD; default today in tz")] = None,
    tz: Annotated[str, Query(description="IANA time zone of the calendar days", examples=["UTC"])] = "UTC",
    sort: Annotated[
        str,
        Query(
            description="customer_id, total_requests, failed_requests, uptime, p99_latency or error_budget_remaining"
        ),
    ] = "customer_id",
    order: Annotated[str, Query(description="asc or desc (ties: customer id ascending)")] = "asc",
    limit: Annotated[int, Query(ge=1, le=1000, description="Customers per page")] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")] = None,
) -> Fleet:
    r = validation.date_range(from_, to, tz, settings.max_range_days)
    return await rollups.fleet(r, rollup_params.sort_key(sort), rollup_params.order(order), limit, cursor)
