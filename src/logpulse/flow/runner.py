"""Running the dataflow: `ingest` (read files to their end) and `process` (tail with recovery).

This module composes the parts: `cluster` (workers, addresses, epoch and recovery for Bytewax; a
member's command line), `supervise` (graceful stop on signals; a local cluster's children) and
`logpulse.progress` (the bar, and the counters members report to their parent). One process runs its
workers in-process; `PROCESSES` > 1 runs that many members as children of this process, and the same
entry point is the multi-host form (`logpulse process -a host:port;… -i N`).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from logpulse import metrics, process_tuning
from logpulse.config import Settings
from logpulse.flow import cluster, supervise
from logpulse.flow.cluster import Member
from logpulse.flow.dataflow import build_flow
from logpulse.flow.outage import OutageLog, StoppedDuringOutage, retrying_while_unavailable, stopped_or
from logpulse.progress import STATS_FILE_ENV, IngestProgress, Stats, reporting_stats, sum_stats
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxUnavailable, InfluxWriter
from logpulse.tailing.discovery import path_problem

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
    to come up (the processor may start before the database does), or until a stop is requested
    (`StoppedDuringOutage`)."""
    if not settings.influxdb_create_database:
        return
    writer = InfluxWriter(Connection.from_settings(settings))
    give_up = settings.write_give_up_s
    try:
        for attempt in retrying_while_unavailable(give_up, OutageLog(give_up), multiplier=0.2):
            with attempt:
                retention.ensure_database(
                    writer, raw_retention=settings.raw_retention, rollup_retention=settings.rollup_retention
                )
    except InfluxUnavailable as exc:
        raise stopped_or(exc, InfluxUnavailable(f"{exc}; gave up after {give_up:g} s (WRITE_GIVE_UP_S)")) from exc
    finally:
        writer.close()


def member(settings: Settings, patterns: list[str], *, follow: bool, me: Member) -> int:
    """Run one process of the dataflow; returns the exit code (0 also after a graceful stop)."""
    supervise.stop_gracefully_on_signals(settings.stop_grace_s)
    metrics.serve_metrics(settings.metrics_port + (me.process_id or 0) if settings.metrics_port else 0)
    if settings.log_level != "DEBUG":  # a failing step is reported in one log line, not a Rust backtrace
        os.environ["RUST_BACKTRACE"] = "0"
    with reporting_stats(metrics.totals):
        try:
            # process: TAIL_SHARDS (fixed: snapshots are keyed by it); ingest: one partition per worker
            shards = settings.tail_shards if follow else me.workers * len(me.addresses or [""])
            flow = build_flow(settings, patterns, follow=follow, shards=shards)
            if follow:
                epoch, recovery = timedelta(seconds=settings.snapshot_interval_s), cluster.recovery(settings)
            else:
                epoch, recovery = INGEST_EPOCH, None
                # a backfill: the libraries' objects leave the GC's full collections (`process_tuning`).
                # Not glibc's thresholds (the API's other setting): they saved ~0.2 s of system time at
                # 10,000 customers but kept 20-35 MB more resident, the state per customer measured
                process_tuning.freeze_startup_objects()
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
    directories = [problem for p in paths if (problem := path_problem(p))]
    if directories:
        return IngestSummary(ok=False, errors=[d.replace("LOG_PATH names", "ingest got") for d in directories])
    missing = [p for p in paths if not glob.glob(p)]
    if missing:
        return IngestSummary(ok=False, errors=[f"no such file: {', '.join(missing)}"])
    if addresses is not None:  # a member of a cluster started by another `ingest`
        code = member(settings, paths, follow=False, me=Member.parse(workers, addresses, process_id))
        return IngestSummary(ok=code == 0)

    _prepare_database(settings)
    started = time.perf_counter()
    dead_letter = Path(settings.dead_letter_path)
    dead_letter_before = dead_letter.stat().st_size if dead_letter.exists() else 0
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
    errors = [] if code == 0 else [f"exit code {code}"]
    if code == 0:
        errors = [f"no valid line in {f}" for f in _files_without_valid_lines(paths, dead_letter, dead_letter_before)]
    return IngestSummary(
        read=int(stats.get("read", 0)),
        written=int(stats.get("written", 0)),
        rejected=int(stats.get("rejected", 0)),
        seconds=time.perf_counter() - started,
        ok=not errors,
        dead_letter=settings.dead_letter_path,
        errors=errors,
    )


def _files_without_valid_lines(patterns: list[str], dead_letter: Path, since: int) -> list[str]:
    """Files of this ingest in which every line was rejected (or that were empty): almost always the
    wrong file or format, so `ingest` must not exit 0 for them. Rejects are counted from the
    dead-letter entries this run appended, and the lines of a file with rejects from the file."""
    rejected: dict[str, int] = {}
    if dead_letter.exists():
        with dead_letter.open("rb") as f:
            f.seek(since)
            for raw in f:
                try:
                    name = str(json.loads(raw)["file"])
                except (ValueError, KeyError, TypeError):
                    continue
                key = os.path.realpath(name)
                rejected[key] = rejected.get(key, 0) + 1
    empty = []
    for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
        refused = rejected.get(os.path.realpath(path), 0)
        if not refused:  # only an empty file: a large file is not read again to count its lines
            if os.path.getsize(path) == 0:
                empty.append(path)
            continue
        lines = 0
        last = b"\n"
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"
        if refused >= lines:
            empty.append(path)
    return empty


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
    for problem in filter(None, map(path_problem, patterns)):
        log.error("%s", problem)  # one line the user can act on, not a traceback from inside the dataflow
        return 2
    if addresses is not None:
        return member(settings, patterns, follow=True, me=Member.parse(workers, addresses, process_id))
    try:
        _prepare_database(settings)
    except StoppedDuringOutage as exc:
        log.warning("stopped before InfluxDB could be reached (%s): nothing was read", exc)
        return 0
    cluster.recovery(settings)  # create it once, before several members race to
    if processes > 1:
        code, _ = _local_cluster("process", [], workers=workers, processes=processes)
        return code
    return member(settings, patterns, follow=True, me=Member(workers))
