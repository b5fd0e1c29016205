"""Progress of a run: the ingest progress bar, and the counters cluster members report to their parent.

The bar (bytes done of total, lines/s and ETA) is drawn only on a terminal; off a terminal (CI,
pipes, log files) nothing is drawn and the one summary line is all there is. A cluster member started
with `LOGPULSE_STATS_FILE` set writes its counters there twice a second (and once at the end); the
parent sums the members' files for the bar and the summary.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

STATS_FILE_ENV = "LOGPULSE_STATS_FILE"
STATS_EVERY_S = 0.5
Stats = dict[str, float]


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

    def update(self, stats: Stats) -> None:
        elapsed = self._bar.tasks[0].elapsed or 0.0
        rate = stats.get("read", 0) / elapsed if elapsed > 0 else 0.0
        self._bar.update(self._task, completed=stats.get("bytes", 0), rate=f"{rate:,.0f} lines/s")

    def follow(self, read_stats: Callable[[], Stats], stop: threading.Event) -> None:
        """Refresh from `read_stats` until `stop` is set (runs in a thread)."""
        base = read_stats()
        while not stop.wait(0.25):
            now = read_stats()
            self.update({k: v - base.get(k, 0) for k, v in now.items()})

    def close(self) -> None:
        self._bar.stop()


def _write_stats(path: Path, stats: Stats) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, path)  # the parent never reads a half-written file


@contextmanager
def reporting_stats(read_stats: Callable[[], Stats]) -> Iterator[None]:
    """While the block runs, write `read_stats()` to $LOGPULSE_STATS_FILE (if set) every STATS_EVERY_S,
    and once more at the end."""
    name = os.environ.get(STATS_FILE_ENV)
    if not name:
        yield
        return
    path, stop = Path(name), threading.Event()

    def loop() -> None:
        while not stop.wait(STATS_EVERY_S):
            _write_stats(path, read_stats())

    threading.Thread(target=loop, daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        _write_stats(path, read_stats())


def sum_stats(files: list[Path]) -> Stats:
    """The members' counters added up (a file not written yet, or unreadable, counts as zero)."""
    total: Stats = {}
    for f in files:
        try:
            for k, v in json.loads(f.read_text()).items():
                total[k] = total.get(k, 0) + v
        except (OSError, ValueError):
            continue
    return total
