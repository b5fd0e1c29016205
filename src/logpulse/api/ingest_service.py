"""What `POST /ingest` does with a body: parse it with LOG_FORMAT, spool the accepted lines, count the rest.

Every bound is checked before work is done: the line count (INGEST_MAX_LINES) before parsing, the
spool's size (INGEST_SPOOL_MAX_BYTES) before parsing too, so a full spool costs a client nothing but
a quick 507. The answer stays small whatever the body: rejections are counted, and only the first
`MAX_REJECTIONS_LISTED` are listed with their line number and reason.

The accepted lines are written as sent (the processor parses the spool again like any log), so the
spooled bytes are the body minus the rejected lines, cut out by their offsets without splitting the
body into a list of lines.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import Counter
from pydantic import BaseModel, Field

from logpulse.api.errors import EmptyBody, PayloadTooLarge, SpoolFull
from logpulse.api.spool import Spool
from logpulse.config import Settings
from logpulse.formats.registry import LineParser, build_parser
from logpulse.model import Chunk

MAX_REJECTIONS_LISTED = 100
ACCEPTED = Counter("logpulse_ingest_lines_accepted", "Lines accepted by POST /ingest and spooled")
REJECTED = Counter("logpulse_ingest_lines_rejected", "Lines refused by POST /ingest")


class Rejection(BaseModel):
    line: int = Field(description="1-based line number in the request body")
    reason: str


class IngestResult(BaseModel):
    accepted: int = Field(description="Lines parsed and durably spooled")
    rejected: int = Field(description="Lines refused (not spooled)")
    rejections: list[Rejection] = Field(
        description=f"The first {MAX_REJECTIONS_LISTED} refused lines' numbers and reasons (`rejected` counts all)"
    )


class Ingest:
    """The parser, the spool and the bounds of one API process (built once, in the lifespan)."""

    def __init__(self, settings: Settings) -> None:
        self.parser: LineParser = build_parser(settings)
        self.spool = Spool(Path(settings.ingest_spool_path))
        self.max_lines = settings.ingest_max_lines
        self.spool_max_bytes = settings.ingest_spool_max_bytes

    def _check_spool_room(self) -> None:
        if self.spool_max_bytes <= 0:
            return
        try:
            size = os.stat(self.spool.path).st_size
        except FileNotFoundError:
            return
        if size >= self.spool_max_bytes:
            raise SpoolFull(
                f"the ingest spool is full ({size} bytes, INGEST_SPOOL_MAX_BYTES={self.spool_max_bytes}): "
                "retry later; its operator rotates it"
            )

    def take(self, body: bytes) -> IngestResult:
        """Parse `body`, spool its accepted lines durably and answer; blocking (run it in a thread)."""
        if not body.strip():
            raise EmptyBody("empty body: send one log line per line")
        if not body.endswith(b"\n"):
            body += b"\n"
        lines = body.count(b"\n")
        if lines > self.max_lines:
            raise PayloadTooLarge(f"{lines} lines exceed INGEST_MAX_LINES={self.max_lines}: send fewer per request")
        self._check_spool_room()
        parsed = self.parser.parse_chunk(Chunk("POST /ingest", 0, 0, body))
        rejects = sorted(parsed.rejects, key=lambda r: r.offset)
        kept: list[bytes] = []
        listed: list[Rejection] = []
        start = 0  # first byte not yet kept or dropped
        line_no, counted_to = 1, 0  # line number of byte `counted_to`
        for reject in rejects:
            kept.append(body[start : reject.offset])
            start = body.index(b"\n", reject.offset) + 1
            if len(listed) < MAX_REJECTIONS_LISTED:
                line_no += body.count(b"\n", counted_to, reject.offset)
                counted_to = reject.offset
                listed.append(Rejection(line=line_no, reason=reject.reason))
        kept.append(body[start:])
        self.spool.append(b"".join(kept) if rejects else body)
        accepted = parsed.lines - len(rejects)
        ACCEPTED.inc(accepted)
        REJECTED.inc(len(rejects))
        return IngestResult(accepted=accepted, rejected=len(rejects), rejections=listed)


def build_ingest(settings: Settings) -> Ingest | None:
    """The application's `Ingest`, or None when INGEST_SPOOL_PATH is empty (POST /ingest is off)."""
    return Ingest(settings) if settings.ingest_spool_path else None
