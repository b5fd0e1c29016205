"""How one process runs its share of the dataflow with Bytewax: workers, cluster addresses, epoch,
recovery, and the command line of a cluster member started by a parent `logpulse` process.

A single process runs all workers itself. A local cluster (`PROCESSES` > 1) is one `logpulse`
child per process, each told the addresses of all members and its own index (`-a/-i`, hidden
options of `ingest` and `process`); the multi-host form is the same with addresses given by hand.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from logpulse.config import Settings
from logpulse.ports import free_ports

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """This process's place in the dataflow: its worker threads, and its cluster if it has one."""

    workers: int
    addresses: list[str] | None = None  # every member's host:port, None when running alone
    process_id: int | None = None  # this member's index in `addresses`

    @classmethod
    def parse(cls, workers: int, addresses: str | None, process_id: int | None) -> Member:
        """From the command line: `addresses` is 'host:port;host:port;...' (None = alone)."""
        if addresses is None:
            return cls(workers)
        return cls(workers, [a.strip() for a in addresses.split(";") if a.strip()], process_id)

    def command(self, command: str, args: list[str]) -> list[str]:
        """The `logpulse` command line that starts this member as a child process."""
        if self.addresses is None or self.process_id is None:
            raise ValueError("only a cluster member is started as a child process")
        return [
            sys.executable,
            "-m",
            "logpulse",
            command,
            *args,
            "--workers",
            str(self.workers),
            "--addresses",
            ";".join(self.addresses),
            "--process-id",
            str(self.process_id),
        ]


def local_cluster(workers: int, processes: int) -> list[Member]:
    """`processes` members on free loopback ports of this host."""
    addresses = [f"127.0.0.1:{p}" for p in free_ports(processes)]
    return [Member(workers, addresses, i) for i in range(processes)]


def recovery(settings: Settings) -> RecoveryConfig:
    """Bytewax recovery in RECOVERY_DIR, created with one partition on first start.

    The snapshots hold customer values (ids, paths, scoring state): the directory is kept 0700 and
    its database files 0600 (SQLite creates its journal and WAL files with the database's mode)."""
    path = Path(settings.recovery_dir)
    if not path.exists() or not any(path.glob("part-*.sqlite3")):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        init_db_dir(path, 1)
        log.info("created recovery directory %s", path)
    path.chmod(0o700)
    for part in path.iterdir():
        if part.is_file():
            part.chmod(0o600)
    return RecoveryConfig(str(path), timedelta(0))


def run(flow: Dataflow, member: Member, *, epoch: timedelta, recovery: RecoveryConfig | None) -> None:
    """Run this member's workers until the flow's input ends (blocks; re-raises a worker's error).

    `bytewax.run.cli_main` is the public entry point behind `python -m bytewax.run` (its `__all__`)."""
    cli_main(
        flow,
        workers_per_process=member.workers,
        process_id=member.process_id,
        addresses=member.addresses,
        epoch_interval=epoch,
        recovery_config=recovery,
    )
