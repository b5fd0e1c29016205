"""What the fleet and customer benchmarks share: skewed traffic written as log files, and
`logpulse ingest` run as users run it, with its memory watched and capped.

Like `support`, a helper of the benchmarks, not a benchmark: it imports the product only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logpulse.generator import format_lines

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

NGINX_FLEET_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_customer_id" $request_time'
)
"""nginx `combined`, a quoted customer header and `$request_time`: an ordinary fleet's access log."""

GOACCESS_FLEET_FORMAT = '%h %^[%d:%t %^] "%r" %s %b "%R" "%u" "%^" %T'
"""The same format in GoAccess's terms (`%^` skips the customer header, `%T` is seconds.milliseconds)."""


@dataclass
class Requests:
    """Columns of generated requests, sorted by time (epoch seconds)."""

    times: np.ndarray
    customers: np.ndarray
    paths: np.ndarray
    statuses: np.ndarray
    durations: np.ndarray


def skewed_requests(n: int, customers: int, start: dt.datetime, seconds: float, skew: float, seed: int) -> Requests:
    """n requests uniform in [start, start + seconds), customers drawn with lognormal(0, skew) weights:
    a few customers send most of the traffic and the tail sends little (at skew 1.0 and 10,000
    customers over a million lines, the median customer sends ~60). Durations lognormal per customer
    around 50-400 ms, whole milliseconds, about 2 % failed."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, skew, customers)
    t0 = start.timestamp()
    times = np.sort(rng.uniform(t0, t0 + seconds, n))
    who = rng.choice(customers, n, p=weights / weights.sum())
    median_s = rng.uniform(0.05, 0.4, customers)
    durations = np.maximum(0.001, np.round(median_s[who] * rng.lognormal(0.0, 0.5, n), 3))
    statuses = np.where(rng.random(n) < 0.02, rng.choice(np.array(["404", "500", "503"]), n), "200")
    names = np.array([f"cust_{i}" for i in range(1, customers + 1)])
    paths = np.array([f"/api/v1/items/{i}" for i in range(50)])[rng.integers(0, 50, n)]
    return Requests(times, names[who], paths, statuses, durations)


def write_logpulse(path: Path, r: Requests) -> Path:
    """The requests in logpulse's own format (the product's writer), via a temporary name."""
    return _write(path, format_lines(r.times, r.customers, r.paths, r.statuses, r.durations, "logpulse"))


def write_nginx_fleet(path: Path, r: Requests) -> Path:
    """The requests in `NGINX_FLEET_FORMAT`, times in UTC (`+0000`, so that days agree for both tools)."""
    stamps = np.datetime_as_string(np.floor(r.times).astype(np.int64).astype("datetime64[s]"), unit="s").tolist()
    rows = zip(stamps, r.customers.tolist(), r.paths.tolist(), r.statuses.tolist(), r.durations.tolist(), strict=True)
    lines = [
        f"10.1.{len(c) % 7}.{int(s[17:19]) + 1} - - [{s[8:10]}/{_MONTHS[int(s[5:7]) - 1]}/{s[:4]}:{s[11:]} +0000] "
        f'"GET {p} HTTP/1.1" {st} 512 "-" "Mozilla/5.0 (X11; Linux x86_64)" "{c}" {d:.3f}\n'
        for s, c, p, st, d in rows
    ]
    return _write(path, lines)


def _write(path: Path, lines: list[str]) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.rename(path)
    return path


def _tree(pid: int) -> dict[int, int]:
    """Resident set size (kB) of a process and of each of its descendants, by pid, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        m = re.search(r"VmRSS:\s+(\d+)", status)
        rss[int(entry)] = int(m.group(1)) if m else 0
    tree, todo = {}, [pid]
    while todo:
        p = todo.pop()
        tree[p] = rss.get(p, 0)
        todo += children.get(p, [])
    return tree


def tree_rss_kb(pid: int) -> tuple[int, int]:
    """Resident set size (kB) of a process and all its descendants, and of the largest one."""
    rss = _tree(pid).values()
    return sum(rss), max(rss, default=0)


def ingest_capped(
    env: dict[str, str], paths: list[Path], cap_mb: float, timeout_s: float = 3600.0, options: list[str] | None = None
) -> dict:
    """`logpulse ingest PATHS [OPTIONS]` with `env`: wall time until it exits (everything durable), CPU time of
    the processes, peak RSS of the process tree (sampled every 0.2 s; also `ru_maxrss` of the
    largest child once it exited). A tree above `cap_mb` is killed, so a configuration that would
    swap stops and says so (`"stopped"`) instead of taking the machine down; so is one still running
    after `timeout_s`."""
    cmd = [sys.executable, "-m", "logpulse", "ingest", *map(str, paths), *(options or [])]
    peak = peak_one = 0
    stopped: str | None = None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_one, stopped
        while not done.wait(0.2):
            tree = _tree(proc.pid)
            total = sum(tree.values())
            peak, peak_one = max(peak, total), max(peak_one, max(tree.values(), default=0))
            elapsed = time.perf_counter() - started
            if stopped is None and (total > cap_mb * 1024 or elapsed > timeout_s):
                stopped = (
                    f"RSS {total / 1024:,.0f} MB above the cap of {cap_mb:,.0f} MB after {elapsed:.0f} s"
                    if total > cap_mb * 1024
                    else f"still running after {timeout_s:,.0f} s (RSS {total / 1024:,.0f} MB)"
                )
                for pid in tree:  # the ingest process and its own children, each by its id
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # ingest and its children
    result = {
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": peak / 1024,
        "peak_rss_one_process_mb": peak_one / 1024,
        "max_child_maxrss_mb": after.ru_maxrss / 1024,  # the largest child so far in this run (Linux: kB)
    }
    if stopped:
        return {**result, "stopped": stopped, "lines": None, "lines_per_s": None}
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed ({proc.returncode}): {err[-2000:]}")
    read = int(re.search(r"read (\d+) lines", out).group(1))  # type: ignore[union-attr]
    return {
        **result,
        "lines": read,
        "rejected": int(re.search(r"rejected (\d+)", out)[1]),  # type: ignore[index]
        "lines_per_s": read / seconds,
        "lines_per_cpu_s": read / cpu if cpu else None,
        "summary": out.strip(),
    }


def private_env(influx_url: str, work: Path, db: str, **extra: str) -> dict[str, str]:
    """The environment of a processor writing into database `db` of a private influxd, nothing else read."""
    return {
        **os.environ,
        "LOGPULSE_ENV_FILE": "/nonexistent",
        "INFLUXDB_URL": influx_url,
        "INFLUXDB_DATABASE": db,
        "DEAD_LETTER_PATH": str(work / f"{db}.rejected.jsonl"),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "unscored": {"SCORING_ENABLED": "false"},
    "rollups_only": {"SCORING_ENABLED": "false", "STORE_RAW": "false"},
}
"""The processor configurations both benchmarks compare (name: environment)."""
