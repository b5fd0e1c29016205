"""A private InfluxDB (Debian's `influxd` 1.x) on loopback, for the demo, the tests and benchmarks.

The configuration is derived from `influxd config` (the binary's own defaults) with every directory
moved under one data dir, both listeners bound to 127.0.0.1 (HTTP on the chosen port, RPC on a free
one), phoning home and self-monitoring off, and request logging off.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from logpulse.ports import free_port, port_in_use


class InfluxdError(RuntimeError):
    """influxd is missing or did not come up."""


def find_influxd() -> str:
    """Path of the influxd binary, or a clear error saying how to install it."""
    path = shutil.which("influxd") or ("/usr/bin/influxd" if os.path.exists("/usr/bin/influxd") else None)
    if not path:
        raise InfluxdError("influxd not found: install it with `apt-get install -y influxdb` (Debian/Ubuntu)")
    return path


def _config(binary: str, data_dir: Path, http_port: int, rpc_port: int) -> str:
    text = subprocess.run([binary, "config"], capture_output=True, text=True, check=True).stdout
    text = text.replace("/var/lib/influxdb", str(data_dir))
    text = re.sub(r'^bind-address = ".*"$', f'bind-address = "127.0.0.1:{rpc_port}"', text, count=1, flags=re.M)
    text = re.sub(
        r'(\[http\][^\[]*?)bind-address = "[^"]*"',
        rf'\g<1>bind-address = "127.0.0.1:{http_port}"',
        text,
        count=1,
        flags=re.S,
    )
    for key, value in (
        ("reporting-disabled", "true"),
        ("log-enabled", "false"),
        ("query-log-enabled", "false"),
        ("store-enabled", "false"),
        ("max-body-size", "0"),
        ("max-concurrent-write-limit", "0"),
    ):
        text = re.sub(rf"^(\s*){key} = .*$", rf"\g<1>{key} = {value}", text, flags=re.M)
    text = re.sub(r'^(\s*)level = ".*"$', r'\g<1>level = "warn"', text, flags=re.M)
    return text


class LocalInfluxd:
    """One influxd process with its own data dir and port. Use `LocalInfluxd.start()`."""

    def __init__(self, data_dir: Path, port: int, owns_dir: bool) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._owns_dir = owns_dir
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, data_dir: Path | None = None, port: int = 0, timeout_s: float = 60.0) -> LocalInfluxd:
        """Start influxd (port 0 = a free port; a temporary data dir if none) and wait until ready."""
        owns = data_dir is None
        data_dir = Path(tempfile.mkdtemp(prefix="logpulse-influxd-")) if data_dir is None else Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        db = cls(data_dir.resolve(), port or free_port(), owns)
        db._launch(timeout_s)
        return db

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def exit_code(self) -> int | None:
        """influxd's exit status once it has exited; None while it runs (or before it started)."""
        return None if self._proc is None else self._proc.poll()

    @property
    def log_file(self) -> Path:
        return self.data_dir / "influxd.log"

    def _launch(self, timeout_s: float) -> None:
        binary = find_influxd()
        if port_in_use(self.port):  # else /ping would be answered by whoever holds the port
            raise InfluxdError(f"port {self.port} on 127.0.0.1 is already in use (another InfluxDB?)")
        conf = self.data_dir / "influxd.conf"
        conf.write_text(_config(binary, self.data_dir, self.port, free_port()))
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [binary, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self.wait_ready(timeout_s)
        except BaseException:  # also Ctrl-C while waiting: never leave an influxd behind
            self.kill()
            raise

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Poll GET /ping until 204; raise with the log's tail if influxd exits or times out.

        One client for all polls: each `httpx.get` builds a client and its TLS context (~25 ms of CPU),
        which was most of a benchmark's own CPU while influxd started (profiled)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    break
                try:
                    if client.get(f"{self.url}/ping").status_code == 204:
                        if self._proc is None or self._proc.poll() is None:
                            return
                        break  # our influxd died: the answer came from someone else
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise InfluxdError(f"influxd on port {self.port} did not become ready; log tail:\n{tail}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, wait, then SIGKILL."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        self._proc.send_signal(signal.SIGCONT)  # a frozen (SIGSTOPped) influxd handles the TERM only once running
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL (a crash, for fault tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def restart(self, timeout_s: float = 60.0) -> None:
        """Start again on the same data dir and port (after stop or kill)."""
        self.stop()
        self._launch(timeout_s)

    def close(self) -> None:
        """Stop and remove the data dir if it was a temporary one."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalInfluxd:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Stopped(Exception):
    """SIGINT/SIGTERM arrived (raised from the handler, so that it also interrupts the start)."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped


def run_foreground(data_dir: Path, port: int) -> int:
    """`logpulse influxd`: run until SIGINT/SIGTERM, then stop influxd; returns the exit code.

    The handlers are in place before influxd starts: a stop while it is still starting kills it
    (LocalInfluxd.start cleans up on any exception) instead of leaving it running without a parent.
    """
    if port and port_in_use(port):
        raise InfluxdError(f"port {port} on 127.0.0.1 is already in use; choose another with --port (0 = a free one)")
    db: LocalInfluxd | None = None
    signal.signal(signal.SIGINT, _raise_stopped)
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        db = LocalInfluxd.start(Path(data_dir), port)
        print(f"influxd ready at {db.url} (data in {db.data_dir}, log {db.log_file})", flush=True)
        while True:
            if db.exit_code is not None:
                print(f"influxd exited with {db.exit_code}; see {db.log_file}", flush=True)
                return 1
            time.sleep(0.5)
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second signal must not interrupt the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if db is not None:
            db.stop()
    return 0
