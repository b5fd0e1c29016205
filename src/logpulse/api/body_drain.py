"""Early answers reach clients that send the whole body first: the unread rest is read and dropped.

Why: a route may answer before reading the request body (413 on a declared Content-Length, 401,
403, 415). When the client asked for `Connection: close` (Python's urllib does), uvicorn closes the
socket right after the answer, and closing a socket with unread data makes the kernel send a reset:
a client still sending — urllib, httpx, requests all send the whole body before reading — then gets
"Connection reset by peer" instead of the answer. Reading the rest of the body before the answer's
last byte leaves nothing unread, so the close is orderly and the answer is read.

Bounded: at most `limit` bytes are read and dropped (a body larger than that, declared or found, is
cut off as before); a client that sent `Expect: 100-continue` and was not yet told to continue is
answered at once, since it has not sent the body.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_LIMIT_BYTES = 256 << 20
"""The most request bytes read and dropped after an early answer (a 64 MiB upload fits)."""


def _declared_body(headers: Headers) -> int | None:
    """The request's declared body length: Content-Length, -1 for chunked, None for no body."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return -1
    length = headers.get("content-length", "")
    return int(length) if length.isdigit() and int(length) > 0 else None


class DrainUnreadBody:
    """Pure ASGI middleware: before an answer's last message, read and drop what is left of the body."""

    def __init__(self, app: ASGIApp, limit: int = DRAIN_LIMIT_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        declared = _declared_body(headers) if headers is not None else None
        if headers is None or declared is None or declared > self.limit:
            await self.app(scope, receive, send)
            return
        expects_continue = headers.get("expect", "").lower() == "100-continue"
        received_any = False
        complete = False
        dropped = 0

        async def tracked_receive() -> Message:
            nonlocal received_any, complete
            received_any = True
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def drain_then_send(message: Message) -> None:
            nonlocal dropped
            last = message["type"] == "http.response.body" and not message.get("more_body", False)
            if last and not (expects_continue and not received_any):
                while not complete and dropped <= self.limit:
                    dropped += len((await tracked_receive()).get("body", b""))
            await send(message)

        await self.app(scope, tracked_receive, drain_then_send)
