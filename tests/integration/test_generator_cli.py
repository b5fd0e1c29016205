"""`logpulse generate` as a process: live mode paces its writes at --rate."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fixtures import generated_rows


def test_cli_live_rate(tmp_path: Path) -> None:
    out = tmp_path / "live.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logpulse",
            "generate",
            "--out",
            str(out),
            "--rate",
            "200",
            "--days",
            "0",
            "--seed",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # start-up (imports) takes seconds on a busy machine: measure after it
    while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    time.sleep(3)
    proc.terminate()
    assert proc.wait(10) == 0
    elapsed = time.monotonic() - started
    n = len(generated_rows(out))
    # ~200 lines/s once writing; bounds loose enough for a loaded machine, tight enough to catch no pacing
    assert 200 * elapsed * 0.25 <= n <= 200 * (elapsed + 1) * 1.5
    assert "wrote" in proc.stderr.read()
