"""Quarantine for refused lines: one JSON object per line (file, offset, line, reason, check).

`check` says what refused the line (`Reject.kind`): `format`, a field name such as `time` or
`status` (`formats.validate`), or `influxdb` (InfluxDB refused the point, see `flow/sinks/influx.py`; `line`
is then the point in line protocol). The file holds raw customer values: it is created 0600, and
its directory, when created here, 0700.

Nothing is dropped silently: every rejected line lands here with its location and is counted in
`logpulse_lines_rejected`; a warning is logged at most every `WARN_EVERY_S` seconds with the count
since the last one. Several workers and processes append to the same file: each batch is one
`write()` on an O_APPEND descriptor, so entries never interleave. After a crash the lines of the
replayed range are quarantined again; (file, offset) identifies an entry.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from logpulse import metrics
from logpulse.model import Reject

log = logging.getLogger(__name__)
WARN_EVERY_S = 10.0


class _RateLimitedWarning:
    """Logs 'N malformed lines' at most once per interval (shared by the workers of a process)."""

    def __init__(self, every_s: float) -> None:
        self._every = every_s
        self._lock = threading.Lock()
        self._pending = 0
        self._last = 0.0

    def add(self, rejects: list[Reject], path: Path) -> None:
        with self._lock:
            self._pending += len(rejects)
            now = time.monotonic()
            if now - self._last >= self._every:
                first = rejects[0]
                log.warning(
                    "%d malformed line(s) quarantined to %s; latest: %s offset %d: %s",
                    self._pending,
                    path,
                    first.path,
                    first.offset,
                    first.reason,
                )
                self._pending = 0
                self._last = now


_WARNING = _RateLimitedWarning(WARN_EVERY_S)


def to_json_line(r: Reject) -> str:
    return json.dumps(
        {"file": r.path, "offset": r.offset, "line": r.line, "reason": r.reason, "check": r.kind}, ensure_ascii=False
    )


class DeadLetterFile:
    """Appends entries to the dead-letter file, one `write()` per batch; counts them by check."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_mode & 0o077:
            os.fchmod(self._fd, 0o600)  # a file created by an older version

    def append(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        data = "".join(to_json_line(r) + "\n" for r in rejects).encode("utf-8", "backslashreplace")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        metrics.LINES_REJECTED.inc(len(rejects))
        for r in rejects:
            metrics.LINES_REJECTED_BY_CHECK.labels(r.kind).inc()
        _WARNING.add(rejects, self.path)

    def close(self) -> None:
        os.close(self._fd)


class _DeadLetterPartition(StatelessSinkPartition[list[Reject]]):
    def __init__(self, path: Path) -> None:
        self._file = DeadLetterFile(path)

    def write_batch(self, items: list[list[Reject]]) -> None:
        self._file.append([r for batch in items for r in batch])

    def close(self) -> None:
        self._file.close()


class DeadLetterSink(DynamicSink[list[Reject]]):
    """Appends rejected lines to the dead-letter file (created with its directory if missing)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DeadLetterPartition:
        return _DeadLetterPartition(self._path)
