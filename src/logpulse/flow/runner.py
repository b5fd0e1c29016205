"""Running the dataflow: `ingest` (read files to their end) and `process` (tail with recovery).

This module composes the parts: `cluster` (workers, addresses, epoch and recovery for Bytewax; a
member's command line), `supervise` (graceful stop on signals; a local cluster's children) and
`logpulse.progress` (the bar, and the counters members report to their parent). One process runs its
workers in-process; `PROCESSES` > 1 runs that many members as children of this process, and the same
entry point is the multi-host form (`logpulse process -a host:port;… -i N`).
"""

from __future__ import annotations

import glob
import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from logpulse import metrics
from logpulse.config import Settings
from logpulse.flow import cluster, supervise
from logpulse.flow.cluster import Member
from logpulse.flow.dataflow import build_flow
from logpulse.flow.outage import OutageLog
from logpulse.progress import STATS_FILE_ENV, IngestProgress, Stats, reporting_stats, sum_stats
from logpulse.storage.influx import Connection, InfluxUnavailable, InfluxWriter

log = logging.getLogger(__name__)
INGEST_EPOCH = timedelta(seconds=10)


@dataclass
class IngestSummary:
    """What `logpulse ingest` prints: lines read, written, rejected, seconds."""

    read: int = 0
    written: int = 0
    rejected: int = 0
    seconds: float = 0.0
    ok: bool = True
    dead_letter: str = ""
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"read {self.read} lines, written {self.written}, rejected {self.rejected}, "
            f"{self.seconds:.2f} seconds ({rate:,.0f} lines/s)"
        )
        if self.rejected:
            text += f"; rejected lines in {self.dead_letter}"
        if not self.ok:
            text += "; FAILED: " + "; ".join(self.errors or ["see log"])
        return text


def _prepare_database(settings: Settings) -> None:
    """Create the database if configured to (idempotent), waiting up to WRITE_GIVE_UP_S for InfluxDB
    to come up (the processor may start before the database does)."""
    if not settings.influxdb_create_database:
        return
    writer = InfluxWriter(Connection.from_settings(settings))
    give_up = settings.write_give_up_s
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(InfluxUnavailable),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            stop=stop_after_delay(give_up),
            before_sleep=OutageLog(give_up),
            reraise=True,
        ):
            with attempt:
                writer.ensure_database()
    except InfluxUnavailable as exc:
        raise InfluxUnavailable(f"{exc}; gave up after {give_up:g} s (WRITE_GIVE_UP_S)") from exc
    finally:
        writer.close()


def member(settings: Settings, patterns: list[str], *, follow: bool, me: Member) -> int:
    """Run one process of the dataflow; returns the exit code (0 also after a graceful stop)."""
    supervise.stop_gracefully_on_signals()
    metrics.serve_metrics(settings.metrics_port + (me.process_id or 0) if settings.metrics_port else 0)
    with reporting_stats(metrics.totals):
        try:
            flow = build_flow(settings, patterns, follow=follow)
            if follow:
                epoch, recovery = timedelta(seconds=settings.snapshot_interval_s), cluster.recovery(settings)
            else:
                epoch, recovery = INGEST_EPOCH, None
            cluster.run(flow, me, epoch=epoch, recovery=recovery)
            return 0
        except Exception as exc:  # the dataflow re-raises a worker's error; report it and exit non-zero
            log.error("dataflow failed: %s", _root_cause(exc))
            log.debug("dataflow failure", exc_info=True)
            return 3


def _root_cause(exc: BaseException) -> str:
    """The error that explains a failure: the first logpulse error in the chain Bytewax wraps
    around a step's exception, else the innermost one."""
    seen: list[BaseException] = [exc]
    while (nxt := seen[-1].__cause__ or seen[-1].__context__) is not None and nxt not in seen:
        seen.append(nxt)
    ours = [e for e in seen if type(e).__module__.startswith("logpulse")]
    found = ours[0] if ours else seen[-1]
    return f"{type(found).__name__}: {found}"


def _local_cluster(
    command: str, args: list[str], *, workers: int, processes: int, progress: IngestProgress | None = None
) -> tuple[int, Stats]:
    """Run `processes` cluster members on this host as children (see supervise.run_children).

    Returns the worst exit code and the summed counters of the children."""
    members = cluster.local_cluster(workers, processes)
    with tempfile.TemporaryDirectory(prefix=f"logpulse-{command}-") as tmp:
        stats_files = [Path(tmp) / f"proc-{i}.json" for i in range(processes)]
        codes = supervise.run_children(
            [m.command(command, args) for m in members],
            [{STATS_FILE_ENV: str(f)} for f in stats_files],
            on_tick=(lambda: progress.update(sum_stats(stats_files))) if progress else None,
        )
        return max((abs(c) for c in codes), default=0), sum_stats(stats_files)


def ingest(
    paths: list[str],
    settings: Settings,
    *,
    workers: int | None = None,
    processes: int | None = None,
    addresses: str | None = None,
    process_id: int | None = None,
) -> IngestSummary:
    """Read `paths` from start to end; return once every line is acknowledged by InfluxDB."""
    workers = workers or settings.workers
    processes = processes or settings.processes
    missing = [p for p in paths if not glob.glob(p)]
    if missing:
        return IngestSummary(ok=False, errors=[f"no such file: {', '.join(missing)}"])
    if addresses is not None:  # a member of a cluster started by another `ingest`
        code = member(settings, paths, follow=False, me=Member.parse(workers, addresses, process_id))
        return IngestSummary(ok=code == 0)

    _prepare_database(settings)
    started = time.perf_counter()
    progress = IngestProgress.for_paths(paths)
    try:
        if processes > 1:
            code, stats = _local_cluster("ingest", paths, workers=workers, processes=processes, progress=progress)
        else:
            before = metrics.totals()
            stop = threading.Event()
            if progress:
                threading.Thread(target=progress.follow, args=(metrics.totals, stop), daemon=True).start()
            code = member(settings, paths, follow=False, me=Member(workers))
            stop.set()
            stats = {k: v - before.get(k, 0) for k, v in metrics.totals().items()}
    finally:
        if progress:
            progress.close()
    return IngestSummary(
        read=int(stats.get("read", 0)),
        written=int(stats.get("written", 0)),
        rejected=int(stats.get("rejected", 0)),
        seconds=time.perf_counter() - started,
        ok=code == 0,
        dead_letter=settings.dead_letter_path,
        errors=[] if code == 0 else [f"exit code {code}"],
    )


def process(
    settings: Settings,
    *,
    workers: int | None = None,
    processes: int | None = None,
    addresses: str | None = None,
    process_id: int | None = None,
) -> int:
    """Tail LOG_PATH with recovery until SIGINT/SIGTERM; returns the exit code."""
    workers = workers or settings.workers
    processes = processes or settings.processes
    patterns = settings.log_globs()
    if addresses is not None:
        return member(settings, patterns, follow=True, me=Member.parse(workers, addresses, process_id))
    _prepare_database(settings)
    cluster.recovery(settings)  # create it once, before several members race to
    if processes > 1:
        code, _ = _local_cluster("process", [], workers=workers, processes=processes)
        return code
    return member(settings, patterns, follow=True, me=Member(workers))
