"""Running the dataflow: `ingest` (read files to their end) and `process` (tail with recovery).

One process runs its workers in-process through Bytewax's `cli_main`. Several processes on one host
are children of this process, each a member of a Bytewax cluster (`cluster_main` with `-a/-i`
addresses); the same entry point is the multi-host form (`logpulse process -a host:port;… -i N`).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType

from bytewax._bytewax import cli_main
from bytewax.recovery import RecoveryConfig, init_db_dir
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from logpulse import metrics
from logpulse.config import Settings
from logpulse.progress import IngestProgress
from logpulse.storage.influx import Connection, InfluxUnavailable, InfluxWriter

log = logging.getLogger(__name__)
STATS_FILE_ENV = "LOGPULSE_STATS_FILE"
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
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(InfluxUnavailable),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            stop=stop_after_delay(settings.write_give_up_s),
            reraise=True,
        ):
            with attempt:
                writer.ensure_database()
    finally:
        writer.close()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _recovery(settings: Settings) -> RecoveryConfig:
    """Bytewax recovery in RECOVERY_DIR, created with one partition on first start."""
    path = Path(settings.recovery_dir)
    if not path.exists() or not any(path.glob("part-*.sqlite3")):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, 1)
        log.info("created recovery directory %s", path)
    return RecoveryConfig(str(path), timedelta(0))


def _run_here(
    settings: Settings,
    patterns: list[str],
    *,
    follow: bool,
    workers: int,
    addresses: list[str] | None,
    process_id: int | None,
) -> None:
    """Run this process's share of the dataflow (all of it, or one cluster member)."""
    from logpulse.flow.dataflow import build_flow

    flow = build_flow(settings, patterns, follow=follow)
    if follow:
        epoch, recovery = timedelta(seconds=settings.snapshot_interval_s), _recovery(settings)
    else:
        epoch, recovery = INGEST_EPOCH, None
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses,
        epoch_interval=epoch,
        recovery_config=recovery,
    )


def _graceful_stop(signum: int, frame: FrameType | None) -> None:
    from logpulse.flow.dataflow import STOP

    if STOP.is_set():  # second signal: the user insists
        raise KeyboardInterrupt
    log.info("signal %d: draining, snapshotting and stopping", signum)
    STOP.set()


def _dump_stats_periodically(path: str, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        _dump_stats(path)


def _dump_stats(path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(metrics.totals(), f)
    os.replace(tmp, path)


def member(
    settings: Settings,
    patterns: list[str],
    *,
    follow: bool,
    workers: int,
    addresses: list[str] | None,
    process_id: int | None,
) -> int:
    """Run one process of the dataflow; returns the exit code (0 also after a graceful stop)."""
    signal.signal(signal.SIGTERM, _graceful_stop)
    signal.signal(signal.SIGINT, _graceful_stop)
    metrics.serve_metrics(settings.metrics_port + (process_id or 0) if settings.metrics_port else 0)
    stats_file = os.environ.get(STATS_FILE_ENV)
    stop = threading.Event()
    if stats_file:
        threading.Thread(target=_dump_stats_periodically, args=(stats_file, stop), daemon=True).start()
    try:
        _run_here(settings, patterns, follow=follow, workers=workers, addresses=addresses, process_id=process_id)
        return 0
    except Exception as exc:  # the dataflow re-raises a worker's error; report it and exit non-zero
        log.error("dataflow failed: %s", _root_cause(exc))
        log.debug("dataflow failure", exc_info=True)
        return 3
    finally:
        stop.set()
        if stats_file:
            _dump_stats(stats_file)


def _root_cause(exc: BaseException) -> str:
    """The error that explains a failure: the first logpulse error in the chain Bytewax wraps
    around a step's exception, else the innermost one."""
    seen: list[BaseException] = [exc]
    while (nxt := seen[-1].__cause__ or seen[-1].__context__) is not None and nxt not in seen:
        seen.append(nxt)
    ours = [e for e in seen if type(e).__module__.startswith("logpulse")]
    found = ours[0] if ours else seen[-1]
    return f"{type(found).__name__}: {found}"


def _child_cmd(command: str, args: list[str], *, workers: int, addresses: list[str], process_id: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "logpulse",
        command,
        *args,
        "--workers",
        str(workers),
        "--addresses",
        ";".join(addresses),
        "--process-id",
        str(process_id),
    ]


def _local_cluster(
    command: str,
    args: list[str],
    *,
    workers: int,
    processes: int,
    stats_dir: Path,
    progress: IngestProgress | None = None,
) -> tuple[int, dict[str, float]]:
    """Run `processes` cluster members on this host as children; forwards SIGINT/SIGTERM to them.

    Returns the worst exit code and the summed counters of the children.
    """
    addresses = [f"127.0.0.1:{p}" for p in _free_ports(processes)]
    stats_files = [stats_dir / f"proc-{i}.json" for i in range(processes)]
    children = [
        subprocess.Popen(
            _child_cmd(command, args, workers=workers, addresses=addresses, process_id=i),
            env={**os.environ, STATS_FILE_ENV: str(stats_files[i])},
        )
        for i in range(processes)
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes: list[int] = []
        while len(codes) < len(children):
            codes = [c.returncode for c in children if c.poll() is not None]
            if any(code != 0 for code in codes):  # a member failed: the cluster cannot go on
                for c in children:
                    if c.poll() is None:
                        c.terminate()
                for c in children:
                    c.wait()
                codes = [c.returncode for c in children]
                break
            if progress:
                progress.update(_sum_stats(stats_files))
            time.sleep(0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    worst = max((abs(c) for c in codes), default=0)
    return worst, _sum_stats(stats_files)


def _sum_stats(files: list[Path]) -> dict[str, float]:
    total: dict[str, float] = {}
    for f in files:
        try:
            for k, v in json.loads(f.read_text()).items():
                total[k] = total.get(k, 0) + v
        except (OSError, ValueError):
            continue
    return total


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
        code = member(
            settings, paths, follow=False, workers=workers, addresses=addresses.split(";"), process_id=process_id
        )
        return IngestSummary(ok=code == 0)

    _prepare_database(settings)
    started = time.perf_counter()
    progress = IngestProgress.for_paths(paths)
    try:
        if processes > 1:
            with tempfile.TemporaryDirectory(prefix="logpulse-ingest-") as tmp:
                code, stats = _local_cluster(
                    "ingest", paths, workers=workers, processes=processes, stats_dir=Path(tmp), progress=progress
                )
        else:
            before = metrics.totals()
            stop = threading.Event()
            if progress:
                threading.Thread(target=progress.follow, args=(metrics.totals, stop), daemon=True).start()
            code = member(settings, paths, follow=False, workers=workers, addresses=None, process_id=None)
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
        return member(
            settings, patterns, follow=True, workers=workers, addresses=addresses.split(";"), process_id=process_id
        )
    _prepare_database(settings)
    _recovery(settings)  # create it once, before several members race to
    if processes > 1:
        with tempfile.TemporaryDirectory(prefix="logpulse-process-") as tmp:
            code, _ = _local_cluster("process", [], workers=workers, processes=processes, stats_dir=Path(tmp))
        return code
    return member(settings, patterns, follow=True, workers=workers, addresses=None, process_id=None)
