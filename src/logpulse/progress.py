"""The ingest progress bar: bytes done of total, lines/s and ETA, only on a terminal.

Off a terminal (CI, pipes, log files) nothing is drawn and the one summary line is all there is.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
from collections.abc import Callable

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class IngestProgress:
    """A rich progress bar fed with the processor's counters (bytes, lines)."""

    def __init__(self, total_bytes: int) -> None:
        self._bar = Progress(
            TextColumn("ingest"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("ingest", total=total_bytes, rate="")
        self._bar.start()

    @classmethod
    def for_paths(cls, patterns: list[str]) -> IngestProgress | None:
        """A progress bar over the files' current sizes, or None when stderr is not a terminal."""
        if not sys.stderr.isatty():
            return None
        files = {f for p in patterns for f in (glob.glob(p) or [p]) if os.path.isfile(f)}
        return cls(sum(os.path.getsize(f) for f in files))

    def update(self, stats: dict[str, float]) -> None:
        elapsed = self._bar.tasks[0].elapsed or 0.0
        rate = stats.get("read", 0) / elapsed if elapsed > 0 else 0.0
        self._bar.update(self._task, completed=stats.get("bytes", 0), rate=f"{rate:,.0f} lines/s")

    def follow(self, read_stats: Callable[[], dict[str, float]], stop: threading.Event) -> None:
        """Refresh from `read_stats` until `stop` is set (runs in a thread)."""
        base = read_stats()
        while not stop.wait(0.25):
            now = read_stats()
            self.update({k: v - base.get(k, 0) for k, v in now.items()})

    def close(self) -> None:
        self._bar.stop()
