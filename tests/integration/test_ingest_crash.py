"""POST /ingest under 32 concurrent clients, with `kill -9` of the API in the middle of the load.

Every line the API answered 202 for must be in the spool exactly once after the crash and restart,
and `logpulse process` (tailing the spool, which LOG_PATH need not name) must store each complete
spooled line once and dead-letter each torn one. Lines of requests that were in
flight when the API died were never acknowledged: they may or may not be in the spool (a torn last
line is dead-lettered), which is what a client that got no answer has to assume anyway.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from fixtures import count_points, free_port, subprocess_env

CLIENTS = 32
LINES_PER_REQUEST = 20


def line(client: int, seq: int, i: int) -> str:
    return (
        f"10.0.{client}.1 - cust_{client % 5} [25/Nov/2026:10:00:{i % 60:02d} +0000] "
        f'"POST /c{client}/r{seq}/l{i}?k=v HTTP/1.1" 200 12 "-" "load" 0.0{i % 10}1'
    )


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpulse", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.1)


def test_concurrent_ingest_survives_kill_9(influx_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spool = tmp_path / "ingest_spool.log"
    env = subprocess_env(influx_settings, LOG_FORMAT="nginx", API_KEY="secret", INGEST_SPOOL_PATH=str(spool))
    port = free_port()
    api_log = tmp_path / "api.out"
    api = start_api(env, port, api_log)
    acked: list[str] = []
    sent: set[str] = set()
    unanswered = 0
    stop = threading.Event()
    lock = threading.Lock()

    def client(n: int) -> None:
        nonlocal unanswered
        seq = 0
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": "Bearer secret", "Content-Type": "text/plain"},
            timeout=10,
        ) as http:
            while not stop.is_set():
                seq += 1
                lines = [line(n, seq, i) for i in range(LINES_PER_REQUEST)]
                with lock:
                    sent.update(lines)
                try:
                    r = http.post("/ingest", content="\n".join(lines) + "\n")
                except httpx.TransportError:
                    with lock:
                        unanswered += 1
                    time.sleep(0.05)
                    continue
                assert r.status_code == 202, r.text
                assert r.json() == {"accepted": LINES_PER_REQUEST, "rejected": 0, "rejections": []}
                with lock:
                    acked.extend(lines)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    began = time.monotonic()
    for t in threads:
        t.start()

    def wait_for_acked(n: int) -> None:
        deadline = time.monotonic() + 120
        while len(acked) < n:
            assert time.monotonic() < deadline, f"only {len(acked)} of {n} lines accepted"
            time.sleep(0.05)

    try:
        wait_for_acked(CLIENTS * LINES_PER_REQUEST)  # the clients are posting
        before_kill = len(acked)
        load_s = time.monotonic() - began
        os.kill(api.pid, signal.SIGKILL)  # mid-load: requests are being parsed, written, fsynced
        api.wait(10)
        api = start_api(env, port, api_log)
        wait_for_acked(len(acked) + CLIENTS * LINES_PER_REQUEST)  # and again after the restart
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - began
        api.terminate()
        api.wait(10)
    print(
        f"\nPOST /ingest, {CLIENTS} clients x {LINES_PER_REQUEST} lines: {before_kill / load_s:,.0f} accepted "
        f"lines/s before the kill (incl. start-up); {len(acked)} accepted in {elapsed:.1f} s in all; "
        f"{unanswered} requests unanswered while the API was down"
    )
    assert len(acked) > before_kill  # accepted before and after the crash

    in_spool = Counter(spool.read_text().splitlines())
    missing = [x for x in acked if in_spool[x] != 1]
    assert not missing, f"{len(missing)} acknowledged lines not exactly once in the spool, e.g. {missing[:2]}"

    # The processor tails the spool although LOG_PATH does not name it (Settings.log_globs adds it).
    complete = sum(n for text, n in in_spool.items() if text in sent)
    torn = sum(in_spool.values()) - complete
    assert torn <= unanswered  # at most one torn line per request the dead API never answered
    out = (tmp_path / "processor.out").open("wb")
    env_process = {**env, "LOG_PATH": str(tmp_path / "no-such-dir" / "*.log"), "POLL_INTERVAL_S": "0.05"}
    processor = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env_process, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while count_points(influx_settings) < complete:
            assert processor.poll() is None, (tmp_path / "processor.out").read_text()[-3000:]
            assert time.monotonic() < deadline, f"{count_points(influx_settings)} of {complete} spooled lines stored"
            time.sleep(0.2)
    finally:
        processor.terminate()
        processor.wait(30)
    assert count_points(influx_settings) == complete  # every spooled line stored once, nothing more
    dead = Path(influx_settings.dead_letter_path)
    assert len(dead.read_text().splitlines() if dead.exists() else []) == torn
