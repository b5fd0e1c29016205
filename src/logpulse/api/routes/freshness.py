"""How fresh the stored data is: the cheap endpoint the dashboard polls for its live status."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request

from logpulse.api.deps import PROTECTED, InfluxDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.freshness import FreshnessProbe
from logpulse.readmodel.schemas import Freshness

router = APIRouter(tags=["operations"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/freshness",
    summary="When data was last written and whether the processor is behind (memoized 1 s; polled by the dashboard)",
)
async def freshness(request: Request, influx: InfluxDep) -> Freshness:
    probe = getattr(request.app.state, "freshness", None)
    if probe is None:  # one probe per application, so that all pages share its memo
        probe = request.app.state.freshness = FreshnessProbe(influx)
    return await cast(FreshnessProbe, probe).get()
