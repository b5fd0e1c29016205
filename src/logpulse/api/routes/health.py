"""Operations: liveness, readiness (InfluxDB reachable) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from logpulse.api.deps import PROTECTED, InfluxDep
from logpulse.api.errors import MAPPINGS, RESPONSES, problem
from logpulse.storage.influx import InfluxUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="InfluxDB is reachable", responses={503: RESPONSES[503]})
async def readyz(influx: InfluxDep) -> Response:
    if await influx.ping():
        return JSONResponse({"status": "ready"})
    return problem(503, "InfluxDB unreachable", MAPPINGS[InfluxUnavailable].headers)


@router.get("/metrics", summary="Prometheus metrics", dependencies=PROTECTED, response_class=Response)
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
