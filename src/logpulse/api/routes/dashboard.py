"""The dashboard's pages and the files they need, all served by the API so the pages work offline.

`/dashboard` is the fleet overview, `/dashboard/customers/{id}` one customer. The pages are static
shells: their ES modules under `static/js/` read the API (`/stats`, `/customers/{id}/series`,
`/freshness`, ...) and keep the page state in the URL. plotly.js comes from the installed `plotly`
package (customer page only; the overview draws its sparklines as inline SVG).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)
_API = Path(__file__).parent.parent
_OVERVIEW = _API / "templates" / "overview.html"
_CUSTOMER = _API / "templates" / "customer.html"
_NO_CACHE = {"Cache-Control": "no-cache"}


def _plotly_js() -> Path:
    """plotly.min.js inside the installed `plotly` package (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is missing: reinstall logpulse")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


_PLOTLY_JS = _plotly_js()


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard", response_model=None)
async def overview(customer: str | None = None) -> Response:
    """The fleet overview; the v1 link `/dashboard?customer=X` goes to X's page."""
    if customer:
        return RedirectResponse(f"/dashboard/customers/{quote(customer, safe='')}")
    return FileResponse(_OVERVIEW, media_type="text/html", headers=_NO_CACHE)


@router.get("/dashboard/customers/{customer_id}")
async def customer_page(customer_id: str) -> FileResponse:
    """One customer's page (its script reads the id from the URL and shows the API's 404 if unknown)."""
    return FileResponse(_CUSTOMER, media_type="text/html", headers=_NO_CACHE)


@router.get("/vendor/plotly.min.js")
async def plotly_js() -> FileResponse:
    return FileResponse(
        _PLOTLY_JS, media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )
