"""`POST /ingest`: log lines over HTTP, parsed with LOG_FORMAT, appended durably to the spool file.

The accepted lines are written, as sent, to INGEST_SPOOL_PATH and fsynced before the 202; the
processor tails that file like any log (it is added to LOG_PATH), so the file is the queue and
every accepted line is processed once its turn comes, also after a crash of the API. Rejected lines
are answered with their line number and reason and are not written.
"""

from __future__ import annotations

import bisect
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter
from pydantic import BaseModel, Field

from logpulse.api.deps import PROTECTED, SettingsDep
from logpulse.api.errors import RESPONSES, EmptyBody, NotFound, PayloadTooLarge, Problem, UnsupportedMediaType
from logpulse.api.spool import Spool
from logpulse.formats.registry import LineParser, build_parser
from logpulse.model import Chunk

router = APIRouter(tags=["ingest"], dependencies=PROTECTED, responses=RESPONSES)
INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Empty body"},
    413: {"model": Problem, "description": "Body larger than INGEST_MAX_BODY_BYTES"},
    415: {"model": Problem, "description": "Content-Type not text/plain (or NDJSON for LOG_FORMAT=json)"},
}
TEXT_TYPES = ("text/plain",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")
ACCEPTED = Counter("logpulse_ingest_lines_accepted", "Lines accepted by POST /ingest and spooled")
REJECTED = Counter("logpulse_ingest_lines_rejected", "Lines refused by POST /ingest")
_state_lock = threading.Lock()


class Rejection(BaseModel):
    line: int = Field(description="1-based line number in the request body")
    reason: str


class IngestResult(BaseModel):
    accepted: int = Field(description="Lines parsed and durably spooled")
    rejected: int = Field(description="Lines refused (not spooled)")
    rejections: list[Rejection] = Field(description="Each refused line's number and reason")


def _parser_and_spool(request: Request) -> tuple[LineParser, Spool]:
    """Built once per application, on first use (the settings were checked when the server started)."""
    state = request.app.state
    with _state_lock:
        if getattr(state, "ingest", None) is None:
            settings = state.settings
            if not settings.ingest_spool_path:
                raise NotFound("POST /ingest is off: INGEST_SPOOL_PATH is empty")
            state.ingest = (build_parser(settings), Spool(Path(settings.ingest_spool_path)))
        return state.ingest  # type: ignore[no-any-return]


def _check_type(content_type: str, log_format: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    allowed = TEXT_TYPES + (NDJSON_TYPES if log_format == "json" else ())
    if media not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not accepted for LOG_FORMAT={log_format}: "
            f"send {' or '.join(allowed)}"
        )


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds INGEST_MAX_BODY_BYTES={limit}")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds INGEST_MAX_BODY_BYTES={limit}")
        parts.append(part)
    return b"".join(parts)


@router.post(
    "/ingest",
    status_code=202,
    summary="Parse log lines in LOG_FORMAT and spool the accepted ones durably for the processor",
    responses=INGEST_RESPONSES,
)
async def ingest(
    request: Request,
    settings: SettingsDep,
) -> IngestResult:
    _check_type(request.headers.get("content-type", ""), settings.log_format)
    body = await _body(request, settings.ingest_max_body_bytes)
    if not body.strip():
        raise EmptyBody("empty body: send one log line per line")
    if not body.endswith(b"\n"):
        body += b"\n"
    parser, spool = _parser_and_spool(request)
    parsed = await run_in_threadpool(parser.parse_chunk, Chunk("POST /ingest", 0, 0, body))
    starts = [0]
    pos = body.find(b"\n")
    while pos >= 0 and pos + 1 < len(body):
        starts.append(pos + 1)
        pos = body.find(b"\n", pos + 1)
    rejected = {r.offset: r.reason for r in parsed.rejects}
    if rejected:
        keep = [
            body[s : (starts[i + 1] if i + 1 < len(starts) else len(body))]
            for i, s in enumerate(starts)
            if s not in rejected
        ]
        data = b"".join(keep)
    else:
        data = body
    await run_in_threadpool(spool.append, data)
    accepted = parsed.lines - len(rejected)
    ACCEPTED.inc(accepted)
    REJECTED.inc(len(rejected))
    return IngestResult(
        accepted=accepted,
        rejected=len(rejected),
        rejections=[
            Rejection(line=bisect.bisect_right(starts, off), reason=reason) for off, reason in sorted(rejected.items())
        ],
    )
