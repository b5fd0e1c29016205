"""Who may talk to the API and what a browser may do with its answers: keys, hosts, origins, headers.

The keys. `API_KEY` opens everything behind `Authorization: Bearer` (the data routes, /metrics and
POST /ingest); `INGEST_API_KEY` opens POST /ingest only, so a machine that ships logs cannot read
every customer's figures. With no key set the routes are open — acceptable on loopback only, which
is why `logpulse serve` refuses a wider address without `API_KEY` (`serving_problem`) unless
`ALLOW_UNAUTHENTICATED=true` says a gateway of the user's own stands in front.

The browser. A page on any site can make the user's browser send requests to a loopback API:
- DNS rebinding points a name of the attacker's at 127.0.0.1, so the browser sends *their* Host
  name: the Host check (`ALLOWED_HOSTS`, Starlette's TrustedHostMiddleware) answers 400 to it.
- A cross-site `POST` with `Content-Type: text/plain` is sent without a CORS preflight: it carries
  an `Origin` that is not this server, and is answered 403 unless it carries a key (`BrowserGuard`).
- The pages carry a Content-Security-Policy (scripts from this server only), nosniff, no framing
  and no referrer beyond the origin, so an injected string cannot run as script nor the dashboard
  be framed by another site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logpulse.config import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Every answer's policy: the dashboard loads its modules, plotly and its stylesheet from this server
and reads the API with `fetch`; no inline script, nothing from elsewhere, never inside a frame. Inline
*styles* are allowed: plotly.js injects its stylesheet as a <style> element (without it the charts
overlap their controls), and a style cannot run code."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def policy_for_inline_scripts(html: str) -> str:
    """The policy for a page whose inline scripts are fixed text (Swagger UI's start-up script):
    each one allowed by its SHA-256, so nothing else inline runs."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return CONTENT_SECURITY_POLICY.replace("script-src 'self'", f"script-src 'self' {hashes}".rstrip())


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def is_loopback(host: str) -> bool:
    """Whether a bind address only listens on this machine (`localhost`, 127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def serving_problem(settings: Settings, host: str) -> str | None:
    """Why `serve` must not listen on `host` with these settings (one line), or None when it may."""
    if is_loopback(host) or settings.api_key or settings.allow_unauthenticated:
        return None
    return (
        f"refusing to serve on {host} without API_KEY: anyone who reaches it could read every customer's "
        "data; set API_KEY (clients send 'Authorization: Bearer <key>'), bind API_HOST=127.0.0.1, or set "
        "ALLOW_UNAUTHENTICATED=true if a gateway of your own authenticates requests"
    )


def _host_pattern(name: str) -> str:
    """An ALLOWED_HOSTS entry as Starlette compares it: lower case, IPv6 literals in brackets."""
    name = name.strip().lower()
    if ":" in name and not name.startswith("["):
        return f"[{name}]"
    return name


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host header values answered: ALLOWED_HOSTS, else the loopback names and API_HOST (when it
    is a name or address, not the wildcard 0.0.0.0 / ::)."""
    configured = [h for h in (p.strip() for p in settings.allowed_hosts.split(",")) if h]
    if configured:
        return ["*"] if "*" in configured else [_host_pattern(h) for h in configured]
    names = list(LOOPBACK_NAMES)
    if settings.api_host.strip() not in ("", "0.0.0.0", "::"):
        names.append(settings.api_host)
    return list(dict.fromkeys(_host_pattern(h) for h in names))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(token: str | None, keys: Iterable[str]) -> bool:
    """Whether `token` equals one of the non-empty `keys` (compared in constant time)."""
    if token is None:
        return False
    sent = token.encode()
    return any(hmac.compare_digest(sent, key.encode()) for key in keys if key)


def _origin_is_host(origin: str, host: str) -> bool:
    """Whether an `Origin` header names the server the request was sent to (its Host header)."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file: pages) and anything else is foreign
    default = ":443" if parts.scheme == "https" else ":80"
    return parts.netloc.lower().removesuffix(default) == host.strip().lower().removesuffix(default)


class BrowserGuard:
    """Pure ASGI middleware: the headers of `HEADERS` and a Content-Security-Policy on every answer
    (a route may set its own policy, e.g. /docs with the hash of its inline script), and a 403 for a
    cross-origin request that changes state without a key."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self.keys = tuple(k for k in keys if k)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if (
            scope["method"] not in SAFE_METHODS
            and origin is not None
            and not _origin_is_host(origin, headers.get("host", ""))
            and not key_matches(bearer_token(headers.get("authorization")), self.keys)
        ):
            refusal = JSONResponse(
                {"detail": f"cross-origin {scope['method']} from {origin[:100]!r} refused: send the API key"},
                status_code=403,
            )
            await refusal(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    out.setdefault(name, value)
                out.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            await send(message)

        return send_with_headers
