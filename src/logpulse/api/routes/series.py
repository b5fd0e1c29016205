"""One customer's numbers per 15 minutes, hour or day of a time zone, from rollups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from logpulse.api import params as rollup_params
from logpulse.api.deps import PROTECTED, CustomerIdDep, RollupsDep, SettingsDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.schemas import Series

router = APIRouter(tags=["customers"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/customers/{customer_id}/series",
    response_model=Series,  # the documented schema; the body is built already serialised (series_json)
    summary="Numbers of one customer per 15 minutes, hour or day",
)
async def series(
    customer_id: CustomerIdDep,
    rollups: RollupsDep,
    settings: SettingsDep,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="A date YYYY-MM-DD (local midnight in tz) or an RFC 3339 time on a 15-minute boundary",
            examples=["2026-11-01", "2026-11-01T14:00:00+01:00"],
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="A date (inclusive) or an RFC 3339 time (exclusive); default: the end of today in tz"),
    ] = None,
    interval: Annotated[str, Query(description="15m, 1h or 1d: quarter-hours, hours or days of tz")] = "1h",
    tz: Annotated[str, Query(description="IANA time zone", examples=["UTC", "Asia/Kathmandu"])] = "UTC",
) -> Response:
    t = rollup_params.time_range(from_, to, tz, settings.max_range_days)
    step = rollup_params.interval(interval)
    body = await rollups.series_json(customer_id, t.start_ns, t.end_ns, step, t.tz)
    return Response(body, media_type="application/json")
