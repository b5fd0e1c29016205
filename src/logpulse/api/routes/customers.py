"""The list of customers, paged by cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from logpulse.api.deps import PROTECTED, ServiceDep
from logpulse.api.errors import RESPONSES
from logpulse.readmodel.schemas import CustomerPage

router = APIRouter(tags=["customers"], dependencies=PROTECTED, responses=RESPONSES)


@router.get("/customers", summary="Every customer seen, with first/last request and total, paged")
async def customers(
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Customers per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> CustomerPage:
    return await service.customers(limit, cursor)
