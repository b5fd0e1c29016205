"""The HTTP API: daily stats, incidents and customers from InfluxDB, health, metrics, dashboard.

`create_app` is the uvicorn factory (`logpulse serve`). One async InfluxDB client and one answer
cache live for the application's lifespan. Errors: bad parameters -> 422 with a message, unknown
customer -> 404, InfluxDB unreachable -> 503 with Retry-After (the API recovers by itself).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator

from logpulse.api import validation
from logpulse.api.cache import AnswerCache
from logpulse.api.dashboard import router as dashboard_router
from logpulse.api.schemas import Anomalies, CustomerPage, Problem, Stats
from logpulse.api.service import NotFound, Service
from logpulse.api.validation import DateRange
from logpulse.config import Settings, get_settings
from logpulse.storage.influx import AsyncInfluxQuery, Connection, InfluxError, InfluxUnavailable

RETRY_AFTER_S = "5"
_bearer = HTTPBearer(auto_error=False, description="API_KEY, when the server sets one")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API key required or wrong"},
    404: {"model": Problem, "description": "Unknown customer"},
    422: {"model": Problem, "description": "Invalid parameter (the message says which and why)"},
    503: {"model": Problem, "description": "InfluxDB unreachable; retry after the Retry-After seconds"},
}


def _service(request: Request) -> Service:
    return request.app.state.service


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def require_key(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """When API_KEY is set, every data route needs `Authorization: Bearer <API_KEY>`."""
    key = _settings(request).api_key
    if key and (creds is None or not hmac.compare_digest(creds.credentials.encode(), key.encode())):
        raise _Unauthorized()


class _Unauthorized(Exception):
    pass


def date_range(
    request: Request,
    from_: Annotated[
        str | None, Query(alias="from", description="First day, YYYY-MM-DD", examples=["2024-09-29"])
    ] = None,
    from_date: Annotated[str | None, Query(description="Alias of `from`")] = None,
    to: Annotated[str | None, Query(description="Last day (inclusive), YYYY-MM-DD; default today in tz")] = None,
    tz: Annotated[
        str, Query(description="IANA time zone of the calendar days", examples=["UTC", "Europe/Berlin"])
    ] = "UTC",
) -> DateRange:
    """The from/to/tz parameters shared by the per-customer routes, validated (422 otherwise)."""
    return validation.date_range(from_ or from_date, to, tz, _settings(request).max_range_days)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = AsyncInfluxQuery(Connection.from_settings(settings))
        cache = AnswerCache(settings.stats_cache_s)
        app.state.service = Service(client, cache)
        cache.start(client)
        yield
        await cache.stop()
        await client.aclose()

    app = FastAPI(
        title="logpulse",
        version="0.1.0",
        description="Per-customer service-level numbers and incidents from API access logs. "
        "All aggregation runs in InfluxDB (InfluxQL).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app)

    @app.exception_handler(validation.BadRequest)
    async def bad_request(request: Request, exc: validation.BadRequest) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=422)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"detail": "missing or wrong API key: send 'Authorization: Bearer <API_KEY>'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(InfluxUnavailable)
    async def unavailable(request: Request, exc: InfluxUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": f"InfluxDB unavailable: {exc}"}, status_code=503, headers={"Retry-After": RETRY_AFTER_S}
        )

    @app.exception_handler(InfluxError)
    async def influx_error(request: Request, exc: InfluxError) -> JSONResponse:
        return JSONResponse({"detail": f"InfluxDB refused the query: {exc}"}, status_code=502)

    protected = [Depends(require_key)]

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="InfluxDB is reachable", responses={503: ERRORS[503]})
    async def readyz(request: Request) -> Response:
        if await _service(request).client.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"detail": "InfluxDB unreachable"}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})

    @app.get(
        "/metrics", tags=["operations"], summary="Prometheus metrics", dependencies=protected, response_class=Response
    )
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/customers",
        tags=["customers"],
        response_model=CustomerPage,
        dependencies=protected,
        summary="Every customer seen, with first/last request and total, paged",
        responses=ERRORS,
    )
    async def customers(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000, description="Customers per page")] = 50,
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    ) -> Any:
        return await _service(request).customers(limit, cursor)

    @app.get(
        "/customers/{customer_id}/stats",
        tags=["customers"],
        response_model=Stats,
        response_model_by_alias=True,
        dependencies=protected,
        summary="Daily service-level numbers of one customer",
        responses=ERRORS,
    )
    async def stats(request: Request, customer_id: str, r: Annotated[DateRange, Depends(date_range)]) -> Any:
        return await _service(request).stats(validation.customer_id(customer_id), r)

    @app.get(
        "/customers/{customer_id}/anomalies",
        tags=["customers"],
        response_model=Anomalies,
        response_model_by_alias=True,
        dependencies=protected,
        summary="Incidents of one customer",
        responses=ERRORS,
    )
    async def anomalies(request: Request, customer_id: str, r: Annotated[DateRange, Depends(date_range)]) -> Any:
        return await _service(request).anomalies(validation.customer_id(customer_id), r)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app
