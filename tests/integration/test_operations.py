"""What operators touch: the ingest progress bar on a terminal, the plain summary elsewhere, and the
processor's Prometheus metrics (lines, rejects, backlog per file, write latency)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fixtures import free_port, subprocess_env
from logpulse.generator import make_lines


def test_ingest_shows_progress_on_a_terminal_and_one_line_otherwise(influx_settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("".join(make_lines(50_000, customers=5, seed=3)))
    env = subprocess_env(influx_settings, COLUMNS="120")
    plain = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, capture_output=True, text=True, timeout=300
    )
    assert plain.returncode == 0
    assert plain.stdout.strip().count("\n") == 0 and "read 50000 lines" in plain.stdout
    assert "ETA" not in plain.stderr

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpulse", "ingest", str(log)],
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    out = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(60)
    os.close(leader)
    text = out.decode(errors="replace")
    assert proc.returncode == 0
    assert "ETA" in text and "lines/s" in text and "MB" in text  # bar: bytes of total, rate, ETA
    assert "read 50000 lines" in text


def test_processor_metrics(influx_settings, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("".join(make_lines(2000, customers=3, seed=4)) + "not a log line\n")
    port = free_port()
    env = subprocess_env(influx_settings, LOG_PATH=str(log), METRICS_PORT=str(port), SNAPSHOT_INTERVAL_S="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpulse", "process"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                if re.search(r"^logpulse_lines_written_total 2000\.0$", text, re.M):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert re.search(r"^logpulse_lines_read_total 2001\.0$", text, re.M), text[-3000:]
        assert re.search(r"^logpulse_lines_rejected_total 1\.0$", text, re.M)
        assert re.search(rf'^logpulse_backlog_bytes{{path="{re.escape(str(log))}"}} 0\.0$', text, re.M)
        assert "logpulse_write_seconds_bucket" in text and "logpulse_write_retries_total" in text
        with open(log, "a") as f:  # the backlog figure follows the file's growth
            f.write("".join(make_lines(100, customers=3, seed=5)))
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0
    assert sum("malformed line" in line for line in out.splitlines()) == 1  # one warning, not one per line
