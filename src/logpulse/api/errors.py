"""Every error the API answers with, in one place: exception type → status, message and headers.

Routes raise the exceptions below, the read model its own (`readmodel.errors`, re-exported here), and
InfluxDB's typed errors pass through; `install`
turns each into the one body shape docs/api.md documents, `{"detail": "<one string>"}`. FastAPI's own
parameter validation is answered in the same shape, naming the parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from logpulse.readmodel.errors import BadRequest as BadRequest
from logpulse.readmodel.errors import NotFound as NotFound
from logpulse.storage.influx import InfluxError, InfluxUnavailable

log = logging.getLogger(__name__)
RETRY_AFTER_S = "5"


class Problem(BaseModel):
    """The body of every error answer."""

    detail: str


class Unauthorized(Exception):
    """API_KEY is set and the request does not carry it: 401."""


# -- POST /ingest ---------------------------------------------------------------------
class PayloadTooLarge(Exception):
    """The request body exceeds INGEST_MAX_BODY_BYTES: 413."""


class UnsupportedMediaType(Exception):
    """The body's Content-Type is not one the configured LOG_FORMAT takes: 415."""


class EmptyBody(Exception):
    """The request has no lines: 400."""


class SpoolFull(Exception):
    """The ingest spool holds INGEST_SPOOL_MAX_BYTES: 507, retry later."""


def _validation_message(exc: Exception) -> str:
    """FastAPI's list of validation errors as one sentence naming each parameter."""
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        parts.append(f"invalid '{'.'.join(loc) or 'request'}': {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


@dataclass(frozen=True)
class Mapping:
    status: int
    message: Callable[[Exception], str] = str
    headers: dict[str, str] = field(default_factory=dict)
    description: str = ""
    logged: bool = False
    """The exception's own text (InfluxDB's words, its URL) goes to the log only, never to the client."""


# Order matters only for subclasses: Starlette picks the handler of the closest class in the MRO.
MAPPINGS: dict[type[Exception], Mapping] = {
    BadRequest: Mapping(422, description="Invalid parameter (the message says which and why)"),
    RequestValidationError: Mapping(422, _validation_message),
    NotFound: Mapping(404, description="Unknown customer"),
    Unauthorized: Mapping(
        401,
        lambda _: "missing or wrong API key: send 'Authorization: Bearer <API_KEY>'",
        {"WWW-Authenticate": "Bearer"},
        "API key required or wrong",
    ),
    InfluxUnavailable: Mapping(
        503,
        lambda _: "the figures cannot be read now: their database is unreachable; retry later",
        {"Retry-After": RETRY_AFTER_S},
        "InfluxDB unreachable; retry after the Retry-After seconds",
        logged=True,
    ),
    InfluxError: Mapping(
        502, lambda _: "the figures could not be read: their database refused the query (see the API log)", logged=True
    ),
    PayloadTooLarge: Mapping(413),
    UnsupportedMediaType: Mapping(415),
    EmptyBody: Mapping(400),
    SpoolFull: Mapping(507, headers={"Retry-After": "60"}),
}

# The documented error answers of the data routes (OpenAPI `responses=`).
RESPONSES: dict[int | str, dict[str, Any]] = {
    m.status: {"model": Problem, "description": m.description} for m in MAPPINGS.values() if m.description
}


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer in the one documented shape."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register one handler per mapped exception type."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        for cls in type(exc).__mro__:
            if cls in MAPPINGS:
                m = MAPPINGS[cls]
                if m.logged:
                    log.warning("%s %s answered %d: %s", request.method, request.url.path, m.status, exc)
                return problem(m.status, m.message(exc), m.headers or None)
        raise exc  # pragma: no cover - only mapped types are registered

    for exc_type in MAPPINGS:
        app.add_exception_handler(exc_type, handle)
