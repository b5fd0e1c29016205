"""Tailing benchmark: the file source's throughput, this tree against a baseline tree.

Reads the same files through `LogSource` (to their end, as `logpulse ingest` does) inside Bytewax,
once counting lines only (the source's own cost) and once parsing them (source + LOG_FORMAT parser,
what the processor does before scoring and writing). Each measurement runs in a fresh interpreter
with PYTHONPATH set to the tree's `src/` and keeps the best of 3 runs (wall time, and the process's
CPU time, which the neighbours' load disturbs less); baseline and current alternate, `--rounds`
times; the table shows the medians and current/baseline. Ratios are what to read: the machine is
shared.

    git worktree add /tmp/logpulse-base <commit-before-the-change>
    .venv/bin/python -m scripts.benchmarks.tailing --baseline /tmp/logpulse-base --json docs/bench/bench_tailing.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from logpulse.generator import make_lines

from .support import ROOT

CHILD = r"""
import sys, time, json
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from logpulse.config import Settings
from logpulse.tailing.source import LogSource
from logpulse.formats.registry import build_parser

pattern, mode = sys.argv[1], sys.argv[2]
total = [0]

class Count(StatelessSinkPartition):
    def write_batch(self, items):
        total[0] += sum(items)

class Sink(DynamicSink):
    def build(self, step_id, worker_index, worker_count):
        return Count()

parser = build_parser(Settings(_env_file=None))
best, best_cpu = float("inf"), float("inf")
for _ in range(3):  # best of 3: the machine is shared, the fastest run is the least disturbed one
    total[0] = 0
    flow = Dataflow("bench")
    chunks = op.input("read", flow, LogSource([pattern], follow=False, read_chunk_bytes=1 << 20))
    if mode == "parse":
        counted = op.map("parse", chunks, lambda c: parser.parse_chunk(c).lines)
    else:
        counted = op.map("count", chunks, lambda c: c.data.count(b"\n"))
    op.output("out", counted, Sink())
    t0, c0 = time.perf_counter(), time.process_time()
    run_main(flow)
    best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
print(json.dumps({"lines": total[0], "seconds": best, "cpu_seconds": best_cpu}))
"""


def make_files(directory: Path, lines: int, files: int) -> str:
    """`files` files of `lines` lines in total under `directory`; returns their glob."""
    directory.mkdir(parents=True, exist_ok=True)
    per = lines // files
    for i in range(files):
        path = directory / f"api-{i:03d}.log"
        if not path.exists():
            path.write_text("".join(make_lines(per, customers=50, seconds=86400, seed=i)))
    return str(directory / "*.log")


def run(src: Path, pattern: str, mode: str) -> tuple[float, float]:
    """(lines per second, lines per CPU second) of the best of 3 runs in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(src), "LOGPULSE_ENV_FILE": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, pattern, mode], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["lines"] / result["seconds"], result["lines"] / result["cpu_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare with")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", default="1,100", help="file counts to measure, comma separated")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    trees = {"baseline": args.baseline.resolve() / "src", "current": ROOT / "src"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tailing-") as tmp:
        for files in (int(n) for n in args.files.split(",")):
            pattern = make_files(Path(tmp) / f"f{files}", args.lines, files)
            for mode in ("count", "parse"):
                wall: dict[str, list[float]] = {"baseline": [], "current": []}
                cpu: dict[str, list[float]] = {"baseline": [], "current": []}
                for _ in range(args.rounds):
                    for name, src in trees.items():
                        w, c = run(src, pattern, mode)
                        wall[name].append(w)
                        cpu[name].append(c)
                row = {"files": files, "mode": mode}
                for label, rates in (("wall", wall), ("cpu", cpu)):
                    base, cur = statistics.median(rates["baseline"]), statistics.median(rates["current"])
                    row |= {f"{label}_baseline": base, f"{label}_current": cur, f"{label}_ratio": cur / base}
                rows.append(row)
                print(
                    f"{files:>4} file(s)  {mode:<6}"
                    f"  lines/s: baseline {row['wall_baseline']:>11,.0f} current {row['wall_current']:>11,.0f}"
                    f" ratio {row['wall_ratio']:.3f}"
                    f"  lines/CPU-s: baseline {row['cpu_baseline']:>11,.0f} current {row['cpu_current']:>11,.0f}"
                    f" ratio {row['cpu_ratio']:.3f}",
                    flush=True,
                )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"lines": args.lines, "rounds": args.rounds, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
