"""Files that hold raw customer values are readable by their owner only: dead letters and recovery."""

from __future__ import annotations

import stat
from pathlib import Path

from logpulse.config import Settings
from logpulse.flow import cluster
from logpulse.flow.sinks.deadletter import DeadLetterFile
from logpulse.model import Reject


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dead_letter_file_and_its_new_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "rejected.jsonl"
    f = DeadLetterFile(path)
    f.append([Reject("a.log", 0, "2026-12-06 00:00:00 c /p 2٠٠ 0.1", "invalid status", "status")])
    f.close()
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    old = tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)
    DeadLetterFile(old).close()
    assert mode(old) == 0o600


def test_recovery_directory_and_its_files(tmp_path: Path) -> None:
    rec = tmp_path / "recovery"
    cluster.recovery(Settings(_env_file=None, recovery_dir=str(rec)))
    assert mode(rec) == 0o700
    assert [mode(p) for p in rec.iterdir()] and all(mode(p) == 0o600 for p in rec.iterdir())
    rec.chmod(0o755)  # a directory made by an older version is tightened on the next start
    cluster.recovery(Settings(_env_file=None, recovery_dir=str(rec)))
    assert mode(rec) == 0o700
