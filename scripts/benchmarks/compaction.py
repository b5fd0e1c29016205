"""Compaction benchmark: cold 30-day stats of a month of rollups against the same month holding 10× as
many late requests written through many identities, before and after `logpulse compact`, both stored
at the same time and measured in short alternating steps; and the rollups' disk use before and after.

One private influxd holds two databases. `base`: the rollup points (all levels, one point per
customer-window, as `scripts.benchmarks.api`) of --requests per --days over --customers. `big`: the
same points, then --late-requests per --days more for the same customers and days written as
--identities separate rollup identities (each a file segment: its own time offset in the window, with
its own fleet-wide `*` point and table) at the 1d level, the level a UTC 30-day range reads. The data
covers --days + 1 days ending today, so that two ranges of --days days are read: the one ending today
(`stats_30d`), whose last day is still open, and the one ending yesterday (`stats_30d_closed`), every
day of it closed and compacted.
The late identities stand for file segments read to their end, so `big` also holds their seals as the
processor writes them (`storage/seals.py`); the base identity stands for files still being read (not
sealed). Each database is served by its own API (`logpulse serve`, STATS_CACHE_S=0: every answer
cold). Stats are measured with the late data stored; then `big` is compacted closed windows only
(`COMPACTION_OPEN_MIN_SEALED=0`, as before seals: today's window keeps its --identities + 1 points) and
the month ending today is measured; then compacted again with --open-min-sealed (today's sealed
identities merged, the base one beside them), and stats and series (7 days at 15m) are measured again.
Both `logpulse compact` runs are timed. Before each measurement the benchmark waits for influxd
to be quiet (its own compactions after a bulk write or many DELETEs run for minutes and would be
measured as the answers' cost), and the data directories are measured with `du`.

Why alternating steps: measured one state after the other, minutes apart, the same code on the same
data gave compacted ÷ base p50 ratios of 0.86 to 2.32 on a quiet machine, because a step's own latency
moved between two levels from one minute to the next. Here a measurement is --rounds rounds; a round
runs wrk (1 client, every customer in rotation) for --step-s seconds against each API, in an order
flipped every round; every --rounds-per-api rounds the APIs are replaced by fresh processes, so a
process that happens to run fast or slow weighs on a few rounds only. Its figure is the median of the
per-round ratios big ÷ base with their spread (min, quartiles, max), and the ratio of the CPU time per
answer of the API and of influxd over all rounds: other work on the shared machine delays answers but
adds little to their CPU time.

With --before-src (the `src` folder of another revision, e.g. `git archive main src | tar -x -C
/tmp/main`) each round also measures that revision's API on both databases, and its ratios are given
beside this one's.

    .venv/bin/python -m scripts.benchmarks.compaction --json docs/bench/bench_compaction.json
    .venv/bin/python -m scripts.benchmarks.compaction --before-src /tmp/main/src --json bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from logpulse.storage.influxd import LocalInfluxd
from logpulse.storage.seals import Seal

from .support import LEVELS, load_average, load_rollups, process_cpu_s, rollup_batches, running_api, wrk_urls

DATABASES = ("base", "big")
SYNTHETIC_NS = 7
"""`support.rollup_batches` writes its points at window start + 7 ns."""


def _shifted(batches: Iterator[list[str]], offset_ns: int) -> Iterator[list[str]]:
    """The points of `batches` under another identity: their times moved by `offset_ns` inside the window."""
    for lines in batches:
        out = []
        for line in lines:
            head, _, t = line.rpartition(" ")
            out.append(f"{head} {int(t) + offset_ns}")
        yield out


def _wait_quiet(pid: int | None, limit_s: float = 300.0) -> float:
    """Wait until influxd uses less than 10 % of a core over 5 s; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        cpu = process_cpu_s(pid)
        time.sleep(5)
        if process_cpu_s(pid) - cpu < 0.5:
            break
    return time.perf_counter() - started


def _du_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0]) / 1024


def _spread(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "min": min(values), "q1": q1, "q3": q3, "max": max(values)}


class Rounds:
    """Alternating short wrk steps against one API per (revision, database), the APIs replaced by fresh
    processes every `rounds_per_api` rounds."""

    def __init__(self, envs: dict[str, dict[str, str]], influxd_pid: int | None, work: Path, args: argparse.Namespace):
        self.keys = [(revision, name) for revision in envs for name in DATABASES]
        self.envs = envs  # revision label ("" = this code) -> the API's environment, less its database
        self.influxd_pid = influxd_pid
        self.work = work
        self.args = args

    @contextlib.contextmanager
    def _apis(self, paths: list[str]) -> Iterator[dict[tuple[str, str], str]]:
        """A fresh API per (revision, database), each warmed up by one answer per path (all must be 200)."""
        with contextlib.ExitStack() as stack:
            urls = {}
            for revision, name in self.keys:
                api = stack.enter_context(running_api({**self.envs[revision], "INFLUXDB_DATABASE": name}))
                for path in paths:
                    r = api.get(path)
                    assert r.status_code == 200, (revision, name, path, r.status_code, r.text[:300])
                urls[(revision, name)] = str(api.base_url).rstrip("/")
            yield urls

    def _step(self, url: str, kind: str, paths: list[str]) -> dict:
        cpu = process_cpu_s(self.influxd_pid)
        r = wrk_urls(url, self.work, kind, paths, 1, self.args.step_s)
        r["influxd_cpu_s"] = process_cpu_s(self.influxd_pid) - cpu
        assert r["non_2xx"] == 0 and not r["socket_errors"], r
        return r

    def measure(self, kind: str, paths: list[str]) -> dict:
        """--rounds rounds over every API; per revision, each database's figures and the ratios big ÷ base."""
        steps: dict[tuple[str, str], list[dict]] = {k: [] for k in self.keys}
        for first in range(0, self.args.rounds, self.args.rounds_per_api):
            with self._apis(paths) as urls:
                for n in range(first, min(first + self.args.rounds_per_api, self.args.rounds)):
                    for key in self.keys if n % 2 == 0 else self.keys[::-1]:
                        steps[key].append(self._step(urls[key], kind, paths))
        out: dict = {}
        for revision in self.envs:
            per = {name: steps[(revision, name)] for name in DATABASES}
            figures = {name: _figures(s) for name, s in per.items()}
            base, big = per["base"], per["big"]
            out[revision or "this"] = {
                **figures,
                "p50_ratio": _spread([b["p50_ms"] / a["p50_ms"] for a, b in zip(base, big, strict=True)]),
                "p99_ratio": _spread([b["p99_ms"] / a["p99_ms"] for a, b in zip(base, big, strict=True)]),
                "api_cpu_ratio": _ratio(figures, "api_cpu_ms_per_answer"),
                "influxd_cpu_ratio": _ratio(figures, "influxd_cpu_ms_per_answer"),
            }
        return out


def _figures(steps: list[dict]) -> dict:
    """One API's rounds: the spread of their p50 and p99, CPU time per answer over all of them."""
    answers = sum(s["requests"] for s in steps)
    return {
        "answers": answers,
        "p50_ms": _spread([s["p50_ms"] for s in steps]),
        "p99_ms": _spread([s["p99_ms"] for s in steps]),
        "api_cpu_ms_per_answer": sum(s["api_cpu_s"] for s in steps) * 1000 / answers,
        "influxd_cpu_ms_per_answer": sum(s["influxd_cpu_s"] for s in steps) * 1000 / answers,
        "p50_ms_per_round": [s["p50_ms"] for s in steps],
    }


def _ratio(figures: dict, figure: str) -> float | None:
    base, big = figures["base"][figure], figures["big"][figure]
    return big / base if base else None  # None when no CPU tick was counted at base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000, help="per --days days")
    ap.add_argument("--late-requests", type=int, default=10_000_000, help="per --days days")
    ap.add_argument("--identities", type=int, default=64, help="16 segments x 4 files")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--rounds-per-api", type=int, default=4, help="fresh API processes after this many rounds")
    ap.add_argument("--step-s", type=int, default=2, help="seconds of wrk per API and round")
    ap.add_argument("--json", type=Path, default=Path("bench_compaction.json"))
    ap.add_argument("--open-min-sealed", type=int, default=8, help="COMPACTION_OPEN_MIN_SEALED of the second pass")
    ap.add_argument("--before-src", type=Path, help="also measure the API of this `src` folder (another revision)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logpulse-bench-compaction-"))
    out: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "load_start": load_average()}
    db = LocalInfluxd.start(work / "influxd")
    try:
        env = {
            **os.environ,
            "LOGPULSE_ENV_FILE": "/nonexistent",
            "INFLUXDB_URL": db.url,
            "STATS_CACHE_S": "0",
            "COMPACTION_LATENESS_S": "1",
            "RECOVERY_DIR": str(work / "recovery"),
        }
        envs = {"": env}
        if args.before_src:
            envs = {"before": {**env, "PYTHONPATH": str(args.before_src.resolve())}, "": env}
        rounds = Rounds(envs, db.pid, work, args)
        rp_dirs = {name: work / "influxd" / "data" / name / "rollups" for name in DATABASES}
        # every identity at an offset past the window's first millisecond, as real (hashed) ones are
        # all but surely: points inside it are left alone (`rollups/compaction.py`)
        days = args.days + 1
        base_n = args.requests * days // args.days
        base_lines = list(_shifted(rollup_batches(base_n, args.customers, days, LEVELS, 1), 2_000_000))
        for name in DATABASES:
            out[f"load_{name}"] = load_rollups(db.url, name, iter(base_lines))
        del base_lines
        per = args.late_requests * days // args.days // args.identities
        late = tuple(lvl for lvl in LEVELS if lvl[0] == "rollups_1d")
        started = time.perf_counter()
        for i in range(args.identities):
            batches = rollup_batches(per, args.customers, days, late, 100 + i)
            load_rollups(db.url, "big", _shifted(batches, 1_000_000_000 * (i + 1)))
        out["load_late_s"] = time.perf_counter() - started
        # each late identity stands for a file segment read to its end, which the processor seals (its
        # offset: the shift plus the synthetic points' own 7 ns); the base identity stands for a file
        # still being read, so it is not sealed and today's window keeps its point beside the merged one
        first_day = (time.time_ns() // 10**9 // 86_400 - days + 1) * 86_400 * 10**9
        last_day = first_day + (days - 1) * 86_400 * 10**9
        seal_lines = [
            Seal(late[0][0], 1_000_000_000 * (i + 1) + SYNTHETIC_NS, first_day, last_day).line()
            for i in range(args.identities)
        ]
        out["load_seals"] = load_rollups(db.url, "big", iter([seal_lines]))
        stored = {"base": base_n, "big": base_n + per * args.identities}
        out["stored_requests"] = stored

        today = dt.datetime.now(dt.UTC).date()
        customers = range(1, args.customers + 1)

        def stats(last: dt.date) -> list[str]:
            frm = last - dt.timedelta(days=args.days - 1)
            return [f"/customers/cust_{c}/stats?from={frm}&to={last}" for c in customers]

        week = (today - dt.timedelta(days=6)).isoformat()
        series = [f"/customers/cust_{c}/series?from={week}&to={today}&interval=15m" for c in customers]

        def step(name: str, kinds: dict[str, list[str]]) -> None:
            out[name] = {
                "waited_for_quiet_influxd_s": _wait_quiet(db.pid),
                "rollups_mb_per_million_requests": {k: _du_mb(d) / (stored[k] / 1e6) for k, d in rp_dirs.items()},
                "load_before": load_average(),
            }
            print(f"{name} ...", flush=True)
            for kind, paths in kinds.items():
                out[name][kind] = rounds.measure(kind, paths)
            out[name]["load_after"] = load_average()
            print(json.dumps(_headline(out[name])), flush=True)

        def compact(name: str, open_min_sealed: int) -> None:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "logpulse", "compact"],
                env={**env, "INFLUXDB_DATABASE": "big", "COMPACTION_OPEN_MIN_SEALED": str(open_min_sealed)},
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
            out[name] = {"seconds": seconds, "output": done.stdout.strip(), "rc": done.returncode}
            print(out[name], flush=True)

        step("late", {"stats_30d": stats(today)})
        compact("compact_closed_only", 0)  # closed windows only, as before seals: today's window stays as it is
        step("compacted_closed_only", {"stats_30d": stats(today)})
        compact("compact", args.open_min_sealed)  # then the sealed identities of the open windows too
        yesterday = today - dt.timedelta(days=1)
        step("compacted", {"stats_30d": stats(today), "stats_30d_closed": stats(yesterday), "series_7d_15m": series})
    finally:
        out["load_end"] = load_average()
        db.close()
        shutil.rmtree(work, ignore_errors=True)  # the influxd data of millions of requests
        args.json.write_text(json.dumps(out, indent=2))


def _headline(step: dict) -> dict:
    """A step's ratios and the big database's p99, for the console."""
    return {
        f"{kind} {revision}": {
            "p50_ratio": {k: round(v, 3) for k, v in r["p50_ratio"].items()},
            "api_cpu_ratio": r["api_cpu_ratio"],
            "influxd_cpu_ratio": r["influxd_cpu_ratio"],
            "big_p99_ms_median": r["big"]["p99_ms"]["median"],
        }
        for kind, revisions in step.items()
        if kind.startswith(("stats_", "series_"))
        for revision, r in revisions.items()
    }


if __name__ == "__main__":
    main()
