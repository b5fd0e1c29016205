"""The HTTP API: `create_app` is the uvicorn factory (`logpulse serve`) and only assembles.

Where things live: routes per resource in `routes/` (registered in `routes/__init__.py`), shared
resources and parameter dependencies in `deps.py` (one InfluxDB client and one answer cache per
lifespan), exception → status mapping in `errors.py`, parameters in `validation.py` + `params.py`.
The answers are computed by the read model, `logpulse.readmodel` (InfluxQL in `readmodel/influxql.py`,
response models in `readmodel/schemas.py`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from starlette.middleware.trustedhost import TrustedHostMiddleware

from logpulse import __version__
from logpulse.api import errors
from logpulse.api.admission import AdmissionLimit
from logpulse.api.body_drain import DrainUnreadBody
from logpulse.api.deps import lifespan
from logpulse.api.routes import ROUTERS
from logpulse.api.routes.docs import SWAGGER_UI
from logpulse.api.security import BrowserGuard, allowed_hosts
from logpulse.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="logpulse",
        version=__version__,
        description="Per-customer service-level numbers and incidents from API access logs. "
        "All aggregation runs in InfluxDB (InfluxQL).",
        lifespan=lifespan,
        docs_url=None,  # routes/docs.py serves /docs from the installed Swagger UI (works offline)
        redoc_url=None,
    )
    app.state.settings = s = settings or get_settings()
    # requests and latency by route template, method and status (docs/operations.md, monitoring)
    instrumentator = Instrumentator(excluded_handlers=["/metrics"])
    instrumentator.add(metrics.requests()).add(metrics.latency(should_include_status=True))
    instrumentator.instrument(app)
    errors.install(app)
    # answers over 1 KB gzipped for clients that accept it: the fleet /stats of 1,000 customers is ~190 KB raw
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    # data answers beyond API_CONCURRENCY wait in arrival order (api/admission.py)
    app.add_middleware(AdmissionLimit, limit=s.api_concurrency)
    # before admission, so refused requests never wait for a slot (api/security.py says why each exists)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(s), www_redirect=False)
    app.add_middleware(BrowserGuard, keys=(s.api_key, s.ingest_api_key))
    # outermost: every early answer (413, 401, 403, 400) reaches clients still sending their body
    app.add_middleware(DrainUnreadBody)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.mount("/vendor/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    return app
