"""The interactive API docs (Swagger UI) and the site icon, served from installed packages.

FastAPI's own `/docs` loads Swagger UI from a CDN, so it breaks offline (the dashboard does not).
The `openapi-ui-bundles` package ships Swagger UI 5 (which reads FastAPI's OpenAPI 3.1; version 4
does not); this page points at its files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from openapi_ui_bundles import swagger_ui

from logpulse.api.security import policy_for_inline_scripts

router = APIRouter(include_in_schema=False)
SWAGGER_UI = Path(swagger_ui.static_path)
"""Mounted at /vendor/swagger-ui by `create_app`."""
_ICON = Path(__file__).parent.parent / "static" / "favicon.png"


def _fixed_page(page: HTMLResponse) -> tuple[str, dict[str, str]]:
    """A fixed Swagger UI page and the policy that allows exactly its own inline script."""
    html = bytes(page.body).decode()
    return html, {"Content-Security-Policy": policy_for_inline_scripts(html)}


_DOCS = _fixed_page(
    get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="logpulse API",
        swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/favicon.ico",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )
)
_REDIRECT = _fixed_page(get_swagger_ui_oauth2_redirect_html())


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(_DOCS[0], headers=_DOCS[1])


@router.get("/docs/oauth2-redirect")
async def oauth2_redirect() -> HTMLResponse:
    return HTMLResponse(_REDIRECT[0], headers=_REDIRECT[1])


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """Browsers ask for it on every page; without it each page load logs a 404 in the console."""
    return FileResponse(_ICON, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})
