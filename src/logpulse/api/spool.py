"""The ingest spool: the file `POST /ingest` appends accepted lines to, and the processor tails.

The file is the queue. An answer 202 is sent only after the lines are written and `fsync`ed, so an
accepted line survives a crash of the API (and of the machine). Each request's lines are one
`write` under a lock (threads of this process) and `flock` (other API processes on the host), so
requests never interleave. A request killed half-way may leave a partial last line: on open, a
file that does not end with a newline gets one, so that fragment is one malformed line of its own
(dead-lettered by the processor) and never glued to the next request's first line. The fragment
belonged to a request that was never answered, so its client did not count it as accepted.

The lines are customers' raw requests: the file is created readable by its owner only (0600), and
its directory, when the spool creates it, 0700.

Rotation: when the path is renamed (logrotate without copytruncate), the next append notices the
new inode and opens a new file there; the processor finishes the renamed one, as for any log.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


class Spool:
    """Appends whole lines durably to one file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = -1
        self._inode = -1

    def _open(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # no other API process is mid-append while we look
        try:
            st = os.fstat(fd)
            if st.st_size > 0:
                with open(self.path, "rb") as f:
                    f.seek(st.st_size - 1)
                    if f.read(1) != b"\n":  # a torn last line from a killed writer: close it off
                        os.write(fd, b"\n")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._fd, self._inode = fd, st.st_ino

    def _current(self) -> int:
        """The descriptor of the file now at the path (reopened after a rename or removal)."""
        try:
            moved = os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            moved = True
        if self._fd < 0 or moved:
            self._open()
        return self._fd

    def append(self, data: bytes) -> None:
        """Append `data` (complete lines, ending with a newline) and make it durable; blocking."""
        if not data:
            return
        with self._lock:
            fd = self._current()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            durable = os.dup(fd)  # stays valid even if a rotation reopens the spool meanwhile
        try:
            os.fsync(durable)  # outside the lock: concurrent requests share the device's flushes
        finally:
            os.close(durable)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
