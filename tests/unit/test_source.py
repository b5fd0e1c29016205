"""The file source, driven directly: batching, partial lines, rotation, resume, start position."""

from __future__ import annotations

from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from fixtures import drain
from fixtures import sample_lines as lines
from logpulse.model import Chunk
from logpulse.tailing.source import FilePartition, LogSource, expand, file_fingerprint


def part(path: Path, resume=None, follow=True, start_at="beginning", chunk=1 << 20) -> FilePartition:
    return FilePartition(
        str(path), resume, follow=follow, start_at=start_at, poll_interval_s=0.01, read_chunk_bytes=chunk
    )


def text(chunks: list[Chunk]) -> bytes:
    return b"".join(c.data for c in chunks)


def stopped_after_10_then_4_appended(f: Path) -> dict:
    """A processor read 10 lines of f and stopped (its snapshot is returned); 4 more were appended since."""
    f.write_bytes(lines(10))
    p = part(f)
    drain(p)
    state = p.snapshot()
    p.close()
    with f.open("ab") as w:
        w.write(lines(4, 10))
    return state


def test_many_lines_per_chunk_and_offsets(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(1000))
    chunks = drain(part(f, chunk=8192))
    assert 1 < len(chunks) < 20  # many lines per chunk, not one line per poll
    assert text(chunks) == f.read_bytes()
    assert all(c.data.endswith(b"\n") for c in chunks)
    assert [c.offset for c in chunks] == [sum(len(x.data) for x in chunks[:i]) for i in range(len(chunks))]
    first = f.read_bytes().split(b"\n")[0] + b"\n"
    assert {c.file_key for c in chunks} == {file_fingerprint(first)}


def test_partial_line_is_held_until_completed(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(3) + b"2024-09-29 01:00:00 cust_a /p 2")
    p = part(f)
    assert text(drain(p)) == lines(3)
    assert p.next_awake() is not None  # idle at the partial line, not spinning
    with f.open("ab") as w:
        w.write(b"00 0.5\n")
    assert text(drain(p)) == b"2024-09-29 01:00:00 cust_a /p 200 0.5\n"


def test_waits_for_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "later.log"
    p = part(f)
    assert drain(p) == [] and p.next_awake() is not None
    f.write_bytes(lines(5))
    assert text(drain(p)) == lines(5)


def test_not_following_stops_at_end_and_keeps_a_final_partial_line(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(5) + b"no newline at the end")
    p = part(f, follow=False)
    assert text(drain(p)) == f.read_bytes()
    with pytest.raises(StopIteration):
        p.next_batch()


def test_rename_rotation_reads_old_file_to_its_end_then_new_file(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(10))
    p = part(f)
    assert text(drain(p)) == lines(10)
    with f.open("ab") as w:  # written just before the rename: must not be lost
        w.write(lines(5, 10))
    f.rename(tmp_path / "a.log.1")
    f.write_bytes(lines(7, tag="b"))
    assert text(drain(p)) == lines(5, 10) + lines(7, tag="b")


def test_copy_truncate_restarts_at_zero(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(10))
    p = part(f)
    drain(p)
    with f.open("r+b") as w:
        w.truncate(0)
    f.write_bytes(lines(3, tag="t"))
    assert text(drain(p)) == lines(3, tag="t")


def test_resume_continues_at_snapshot_offset(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    state = stopped_after_10_then_4_appended(f)
    assert text(drain(part(f, resume=state))) == lines(4, 10)


def test_resume_after_rotation_while_down_finishes_old_file_found_by_fingerprint(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    state = stopped_after_10_then_4_appended(f)
    f.rename(tmp_path / "a.log.1")
    f.write_bytes(lines(6, tag="n"))
    assert text(drain(part(f, resume=state))) == lines(4, 10) + lines(6, tag="n")


def test_start_at_end_skips_history_but_reads_new_lines(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(10))
    p = part(f, start_at="end")
    assert drain(p) == []
    with f.open("ab") as w:
        w.write(lines(2, 10))
    assert text(drain(p)) == lines(2, 10)


def test_expand_globs_and_missing_files(tmp_path: Path) -> None:
    for name in ("b.log", "a.log", "c.txt"):
        (tmp_path / name).write_bytes(lines(1))
    assert expand([str(tmp_path / "*.log")], must_exist=True) == [str(tmp_path / "a.log"), str(tmp_path / "b.log")]
    assert expand([str(tmp_path / "nope.log")], must_exist=False) == [str(tmp_path / "nope.log")]
    with pytest.raises(FileNotFoundError, match=r"nope\.log"):
        expand([str(tmp_path / "nope.log")], must_exist=True)


def test_through_bytewax_every_byte_once(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.log").write_bytes(lines(500 + i, tag=str(i)))
    flow = Dataflow("t")
    out: list[Chunk] = []
    s = op.input("in", flow, LogSource([str(tmp_path / "*.log")], follow=False, read_chunk_bytes=4096))
    op.output("out", s, TestingSink(out))
    run_main(flow)
    for i in range(3):
        mine = sorted((c for c in out if c.path.endswith(f"{i}.log")), key=lambda c: c.offset)
        assert text(mine) == (tmp_path / f"{i}.log").read_bytes()


def test_start_at_end_applies_only_to_a_new_file_not_after_rotation(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(10))
    p = part(f, start_at="end")
    assert drain(p) == []
    f.rename(tmp_path / "a.log.1")
    f.write_bytes(lines(4, tag="r"))  # the rotated-in file: read from its start
    assert text(drain(p)) == lines(4, tag="r")
    with f.open("r+b") as w:
        w.truncate(0)
    f.write_bytes(lines(2, tag="t"))  # after copy-truncate: from the start too
    assert text(drain(p)) == lines(2, tag="t")


def test_snapshot_between_rotation_and_new_file_resumes_new_file_from_start(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(lines(3))
    p = part(f, start_at="end")
    drain(p)
    f.rename(tmp_path / "a.log.1")  # no new file yet
    assert drain(p) == []
    state = p.snapshot()
    p.close()
    f.write_bytes(lines(5, tag="n"))
    assert text(drain(part(f, resume=state, start_at="end"))) == lines(5, tag="n")


def test_resume_after_rename_with_no_new_file_yet_finishes_the_renamed_file(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    state = stopped_after_10_then_4_appended(f)
    f.rename(tmp_path / "a.log.1")  # renamed while down; the writer has not created a.log yet
    q = part(f, resume=state)
    assert text(drain(q)) == lines(4, 10)
    f.write_bytes(lines(3, tag="n"))
    assert text(drain(q)) == lines(3, tag="n")
    later = q.snapshot()
    assert {c.offset for c in later.checkpoints if c.path == str(f)} == {len(lines(3, tag="n"))}
