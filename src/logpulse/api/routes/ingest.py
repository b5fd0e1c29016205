"""`POST /ingest`: log lines over HTTP, parsed with LOG_FORMAT, appended durably to the spool file.

The accepted lines are written, as sent, to INGEST_SPOOL_PATH and fsynced before the 202; the
processor tails that file like any log (it is added to LOG_PATH), so the file is the queue and
every accepted line is processed once its turn comes, also after a crash of the API. Rejected lines
are counted and the first 100 answered with their line number and reason; they are not written.
The route checks what HTTP carries (type, size); `api/ingest_service.py` does the rest.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from logpulse.api.deps import INGEST_PROTECTED, IngestDep, SettingsDep
from logpulse.api.errors import RESPONSES, PayloadTooLarge, Problem, UnsupportedMediaType
from logpulse.api.ingest_service import IngestResult

router = APIRouter(tags=["ingest"], dependencies=INGEST_PROTECTED, responses=RESPONSES)
INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Empty body"},
    413: {"model": Problem, "description": "Body larger than INGEST_MAX_BODY_BYTES or INGEST_MAX_LINES"},
    415: {"model": Problem, "description": "Content-Type not text/plain (or NDJSON for LOG_FORMAT=json)"},
    507: {"model": Problem, "description": "The spool holds INGEST_SPOOL_MAX_BYTES; retry after Retry-After"},
}
TEXT_TYPES = ("text/plain",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")


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
async def ingest(request: Request, ingest: IngestDep, settings: SettingsDep) -> IngestResult:
    _check_type(request.headers.get("content-type", ""), settings.log_format)
    body = await _body(request, settings.ingest_max_body_bytes)
    return await run_in_threadpool(ingest.take, body)
