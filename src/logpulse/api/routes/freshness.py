"""How fresh the stored data is: the cheap endpoint the dashboard polls for its live status."""

from __future__ import annotations

from fastapi import APIRouter

from logpulse.api.deps import PROTECTED, FreshnessDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.schemas import Freshness

router = APIRouter(tags=["operations"], dependencies=PROTECTED, responses=RESPONSES)


@router.get(
    "/freshness",
    summary="When data was last written and whether the processor is behind (memoized 1 s; polled by the dashboard)",
)
async def freshness(probe: FreshnessDep) -> Freshness:
    return await probe.get()
