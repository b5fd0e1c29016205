"""The dashboard page and the charting library it uses (plotly.js from the installed `plotly`
package, served locally so the page works offline). The page holds no data; it calls the API."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)
_PAGE = Path(__file__).parent.parent / "templates" / "dashboard.html"
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_PAGE.read_text())


@router.get("/vendor/plotly.min.js")
async def plotly_js() -> FileResponse:
    return FileResponse(
        _PLOTLY_JS, media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )
