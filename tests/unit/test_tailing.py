"""The tailing parts driven directly (no processes): discovery, identity by content, copytruncate,
compressed files, deleted files, the descriptor budget and resume states of both versions."""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import shutil
from pathlib import Path

import pytest

from fixtures import drain
from fixtures import sample_lines as lines
from logpulse.model import Chunk
from logpulse.tailing import checkpoint
from logpulse.tailing.checkpoint import ResumeState
from logpulse.tailing.fingerprint import file_fingerprint
from logpulse.tailing.reader import BUDGET
from logpulse.tailing.source import FilePartition, LogSource


def part(pattern: Path | str, resume: object = None, **kw: object) -> FilePartition:
    opts: dict = {"follow": True, "poll_interval_s": 0.01, "discover_interval_s": 0.0} | kw
    return FilePartition(str(pattern), resume, **opts)


def by_file(chunks: list[Chunk]) -> dict[int, bytes]:
    """file_key -> the bytes read from it, checked to be contiguous from some offset."""
    out: dict[int, list[Chunk]] = {}
    for c in chunks:
        out.setdefault(c.file_key, []).append(c)
    result = {}
    for key, cs in out.items():
        for a, b in itertools.pairwise(cs):
            assert b.offset == a.offset + len(a.data), "a gap or an overlap"
        result[key] = b"".join(c.data for c in cs)
    return result


def fp(data: bytes) -> int:
    return file_fingerprint(data.split(b"\n")[0] + b"\n")


def test_files_created_after_start_are_discovered_and_read_from_their_start(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(lines(3))
    p = part(tmp_path / "*.log", start_at="end")
    assert drain(p) == []  # present at first start: START_AT=end skips its history
    (tmp_path / "b.log").write_bytes(lines(5, tag="b"))
    (tmp_path / "skip.log").write_bytes(lines(2, tag="x"))
    q = part(tmp_path / "*.log", p.snapshot(), start_at="end", exclude=[str(tmp_path / "skip*")])
    assert by_file(drain(q)) == {fp(lines(5, tag="b")): lines(5, tag="b")}  # new file from 0; excluded never


def test_copytruncate_while_behind_reads_the_copy_tail_then_the_new_file(tmp_path: Path) -> None:
    f = tmp_path / "api.log"
    f.write_bytes(lines(10))
    p = part(f)
    assert b"".join(c.data for c in drain(p)) == lines(10)
    with f.open("ab") as w:
        w.write(lines(6, 10))  # written, not read yet (the processor is behind)
    shutil.copy(f, tmp_path / "api.log.1")  # logrotate copytruncate: copy, then truncate in place
    with f.open("r+b") as w:
        w.truncate(0)
    with f.open("ab") as w:
        w.write(lines(4, tag="n"))
    got = by_file(drain(p))
    assert got == {fp(lines(10)): lines(6, 10), fp(lines(4, tag="n")): lines(4, tag="n")}


def test_copytruncate_tail_found_after_a_restart(tmp_path: Path) -> None:
    f = tmp_path / "api.log"
    f.write_bytes(lines(10))
    p = part(f)
    first = drain(p)
    state = p.snapshot()
    p.close()
    with f.open("ab") as w:
        w.write(lines(6, 10))
    shutil.copy(f, tmp_path / "api.log-20261125")
    f.write_bytes(lines(2, tag="n"))  # truncated and written again while the processor was down
    chunks = drain(part(f, state))
    assert by_file(first + chunks) == {fp(lines(10)): lines(16), fp(lines(2, tag="n")): lines(2, tag="n")}
    assert min(c.offset for c in chunks if c.file_key == fp(lines(10))) == len(lines(10))  # same offsets


def test_renamed_out_of_the_glob_while_down_continues_at_its_offset(tmp_path: Path) -> None:
    f = tmp_path / "svc.log"
    f.write_bytes(lines(8))
    p = part(tmp_path / "*.log")
    drain(p)
    state = p.snapshot()
    p.close()
    with f.open("ab") as w:
        w.write(lines(3, 8))
    f.rename(tmp_path / "svc.log.1")
    got = drain(part(tmp_path / "*.log", state))
    assert [(c.file_key, c.offset, c.data) for c in got] == [(fp(lines(8)), len(lines(8)), lines(3, 8))]


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open])
def test_compressed_rotation_of_a_read_file_is_skipped_and_a_new_one_read_decompressed(
    tmp_path: Path, opener: object
) -> None:
    f = tmp_path / "api.log"
    f.write_bytes(lines(10))
    p = part(tmp_path / "api.log*")
    assert by_file(drain(p)) == {fp(lines(10)): lines(10)}
    with opener(tmp_path / "api.log.1.gz", "wb") as z:  # type: ignore[operator]
        z.write(lines(10))  # a compressed rotation of what was read: nothing new
    with opener(tmp_path / "api.log.old", "wb") as z:  # type: ignore[operator]
        z.write(lines(7, tag="old"))  # a backfill never read, no telling suffix
    got = drain(p)
    assert by_file(got) == {fp(lines(7, tag="old")): lines(7, tag="old")}
    assert all(c.offset == 0 for c in got)  # decompressed offsets: as if the plain file had been read


def test_compressed_rotation_with_an_unread_tail_is_read_from_the_offset(tmp_path: Path) -> None:
    f = tmp_path / "api.log"
    f.write_bytes(lines(10))
    p = part(f)
    drain(p)
    state = p.snapshot()
    p.close()
    with f.open("ab") as w:
        w.write(lines(5, 10))
    with gzip.open(tmp_path / "api.log.1.gz", "wb") as z:
        z.write(f.read_bytes())  # rotated and compressed while the processor was down
    f.unlink()
    got = drain(part(f, state))
    assert [(c.file_key, c.offset, c.data) for c in got] == [(fp(lines(10)), len(lines(10)), lines(5, 10))]


def test_zstd_is_skipped_not_parsed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.log.zst").write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(200) + b"\n")
    assert drain(part(tmp_path / "*")) == []
    assert "zstd-compressed" in caplog.text


def test_deleted_file_is_finished_from_its_descriptor_then_closed(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(5))
    p = part(f)
    drain(p)
    held = BUDGET.held
    with f.open("ab") as w:
        w.write(lines(3, 5) + b"2024-09-29 01:00:09 cust_a /p 200 0.5")  # a last line without newline
    f.unlink()
    got = b"".join(c.data for c in drain(p))
    drain(p)
    assert got == lines(3, 5) + b"2024-09-29 01:00:09 cust_a /p 200 0.5"
    assert BUDGET.held == held - 1  # its descriptor is closed: the disk space is freed


def test_truncated_and_rewritten_with_the_same_first_line_is_not_resumed_mid_line(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(10))
    p = part(f)
    drain(p)
    state = p.snapshot()
    p.close()
    rewritten = lines(1) + b"2024-09-29 02:00:00 cust_z /a-much-longer-path 200 0.5\n" * 12
    f.write_bytes(rewritten)  # same first line, other content past the old offset
    assert b"".join(c.data for c in drain(part(f, state))) == rewritten


def test_many_files_within_the_descriptor_budget(tmp_path: Path) -> None:
    old, base = BUDGET.limit, BUDGET.held  # (partitions of other tests may still hold some)
    LogSource([], follow=True, max_open_files=base + 8)
    try:
        for i in range(60):
            (tmp_path / f"{i:02d}.log").write_bytes(lines(3, tag=str(i)))
        p = part(tmp_path / "*.log", close_idle_s=0.0)
        got = drain(p, calls=1000)
        assert BUDGET.held <= base + 8
        for i in range(0, 60, 7):
            with (tmp_path / f"{i:02d}.log").open("ab") as w:
                w.write(lines(2, 3, tag=str(i)))
        got += drain(p, calls=1000)
        want = {fp(lines(3, tag=str(i))): lines(5 if i % 7 == 0 else 3, tag=str(i)) for i in range(60)}
        assert by_file(got) == want
        p.close()
    finally:
        BUDGET.limit = old


def test_state_is_typed_versioned_and_bounded(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(4))
    p = part(tmp_path / "*.log", forget_after_s=0.05)
    drain(p)
    state = p.snapshot()
    assert isinstance(state, ResumeState) and state.version == checkpoint.VERSION
    assert [(c.fingerprint, c.offset) for c in state.checkpoints] == [(fp(lines(4)), len(lines(4)))]
    p.close()
    f.unlink()
    q = part(tmp_path / "*.log", state, forget_after_s=0.05)
    import time

    time.sleep(0.1)
    drain(q)
    assert q.snapshot().checkpoints == ()  # gone longer than FORGET_AFTER_S: forgotten


def test_snapshot_of_the_previous_version_resumes(tmp_path: Path) -> None:
    """Version 1 of the file source (one file per LOG_PATH) snapshotted, per file path, a dict; the partition
    key for a literal LOG_PATH is still that path, so Bytewax hands the old snapshot to the new code."""
    f = tmp_path / "api.log"
    f.write_bytes(lines(10))
    v1 = {"fingerprint": fp(lines(10)), "offset": len(lines(10)), "inode": os.stat(f).st_ino, "old": None}
    with f.open("ab") as w:
        w.write(lines(4, 10))
    source = LogSource([str(f)], follow=True, poll_interval_s=0.01, discover_interval_s=0.0)
    assert source.list_parts() == [str(f)]
    got = drain(source.build_part("read", str(f), v1))
    assert [(c.offset, c.data) for c in got] == [(len(lines(10)), lines(4, 10))]


def test_snapshot_of_the_previous_version_mid_rotation_resumes(tmp_path: Path) -> None:
    f = tmp_path / "api.log"
    f.write_bytes(lines(10) + lines(3, 10))
    f.rename(tmp_path / "api.log.1")
    f.write_bytes(lines(5, tag="n") + lines(2, tag="m"))
    v1 = {
        "fingerprint": fp(lines(5, tag="n")),
        "offset": len(lines(5, tag="n")),
        "inode": os.stat(f).st_ino,
        "old": {"fingerprint": fp(lines(10)), "offset": len(lines(10))},
    }
    got = by_file(drain(part(f, v1)))
    assert got == {fp(lines(10)): lines(3, 10), fp(lines(5, tag="n")): lines(2, tag="m")}


def test_ingest_reads_gzip_decompressed_with_the_plain_files_identity(tmp_path: Path) -> None:
    plain = tmp_path / "a.log"
    plain.write_bytes(lines(50))
    with gzip.open(tmp_path / "b.gz", "wb") as z:
        z.write(lines(50))
    a = drain(part(plain, follow=False, read_chunk_bytes=256))
    b = drain(part(tmp_path / "b.gz", follow=False, read_chunk_bytes=256))
    assert by_file(a) == by_file(b) == {fp(lines(50)): lines(50)}  # same key, same bytes at the same offsets
    assert a[0].offset == b[0].offset == 0
