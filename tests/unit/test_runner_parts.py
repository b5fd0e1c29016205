"""The runner's parts in-process: a member's command line, local cluster addresses, the counters
members report to their parent, and counters read through prometheus-client's public API."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer

from logpulse import metrics, progress
from logpulse.cli import app
from logpulse.flow.cluster import Member, local_cluster


def test_member_command_line_round_trips() -> None:
    members = local_cluster(workers=2, processes=3)
    assert len({m.addresses[0] for m in members}) == 1  # all share one address list
    assert len(set(members[0].addresses or [])) == 3  # on distinct ports
    cmd = members[1].command("ingest", ["a.log", "b.log"])
    assert cmd[:5] == [sys.executable, "-m", "logpulse", "ingest", "a.log"]
    opts = dict(zip(cmd[6::2], cmd[7::2], strict=True))
    assert opts == {"--workers": "2", "--addresses": ";".join(members[1].addresses or []), "--process-id": "1"}
    assert Member.parse(2, opts["--addresses"], 1) == members[1]
    assert Member.parse(3, None, None) == Member(3)
    # the child's arguments are what the `logpulse ingest` command itself parses
    params = typer.main.get_command(app).commands["ingest"].make_context("ingest", cmd[4:]).params  # type: ignore[attr-defined]
    assert params["workers"] == 2 and params["process_id"] == 1 and params["addresses"] == opts["--addresses"]
    assert [str(p) for p in params["paths"]] == ["a.log", "b.log"]


def test_only_cluster_members_have_a_command_line() -> None:
    with pytest.raises(ValueError, match="cluster member"):
        Member(1).command("process", [])


def test_totals_follow_the_counters() -> None:
    before = metrics.totals()
    metrics.LINES_READ.inc(7)
    metrics.BYTES_READ.inc(100)
    after = metrics.totals()
    assert after["read"] - before["read"] == 7 and after["bytes"] - before["bytes"] == 100
    assert set(after) == {"bytes", "read", "written", "rejected", "incidents", "retries"}


def test_members_report_counters_the_parent_sums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [tmp_path / "proc-0.json", tmp_path / "proc-1.json", tmp_path / "never-written.json"]
    for i, f in enumerate(files[:2]):
        monkeypatch.setenv(progress.STATS_FILE_ENV, str(f))
        with progress.reporting_stats(lambda i=i: {"read": 10.0 + i, "bytes": 5.0}):
            pass
    assert progress.sum_stats(files) == {"read": 21.0, "bytes": 10.0}
    (tmp_path / "proc-1.json").write_text("{half a fi")
    assert progress.sum_stats(files) == {"read": 10.0, "bytes": 5.0}


def test_a_stop_requested_during_start_up_starts_no_cluster_member() -> None:
    from logpulse.flow import supervise

    supervise.STOP.set()  # as the SIGTERM handler `logpulse process` installs first thing does
    try:  # a started child would fail here: unit tests refuse processes
        assert supervise.run_children([["logpulse", "process"]] * 2, [{}, {}]) == [0, 0]
    finally:
        supervise.STOP.clear()
