#!/usr/bin/env python3
"""Cost of anomaly scoring per line, in-process, on busy and on sparse traffic; any git revisions
compared with the working tree in one run (issues 5, 17).

Why in-process: end to end (`bench_ingest.py`) the scorer's share drowns in parsing, rollups and
InfluxDB; here the same chunks (1 MiB, parsed beforehand, as the dataflow's `parse` step emits them)
go through `CustomerScorer.score` per customer batch and, as in the dataflow, the stream clock's
`Tick`s go to every known customer after each chunk. Only scoring and the clock are timed (CPU time
of this process, best of `--repeat`); parsing a line is timed too, as a yardstick of what a line
costs anyway.

Data (generated once into --work-dir, 50 customers, logpulse format, time-ordered like a backfill):
* busy:   --lines over --busy-days (1 day: ~12 requests per customer per 30 s bucket);
* sparse: --lines over --sparse-days (30 days: ~0.2 requests per customer-bucket, ~1 per non-empty one);
* any --log FILE (e.g. a bench_anomaly scenario's log) as well.

Each revision runs in a child process importing that revision's `src` (`git archive REV src`); the
child also prints a digest of the incidents it produced (kind, start, end, status, peak, requests, of
each incident's last version), so two revisions that make the same decisions print the same digest.

    .venv/bin/python scripts/bench_scoring.py --rev 6194107^ --rev main [--lines 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20
CUSTOMERS = 50
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def make_log(path: Path, lines: int, days: float, seed: int) -> Path:
    """A backfill of `lines` requests over `days` days, written by bench_ingest's own generator call."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_ingest import write_backfill

    return write_backfill(path, lines, days, seed, NOW)


def anomaly_logs(work: Path) -> list[tuple[str, Path]]:
    """The logs `bench_anomaly.py` ingests (same generators and seeds), written once into `work`: two
    revisions that print the same digests on them report the same incidents there."""
    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT / "src"))
    import bench_anomaly as ba

    logs = []
    for sc in ba.SCENARIOS:
        path = work / f"anomaly-{sc.seed}.log"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            ba.write_log(sc, tmp)
            Path(f"{tmp}.incidents.json").unlink(missing_ok=True)  # the ground truth: not needed here
            tmp.rename(path)
        logs.append((sc.name, path))
    return logs


def source_of(rev: str, work: Path) -> Path:
    """`src` of a git revision, extracted once into the work dir ('.' = the working tree)."""
    if rev == ".":
        return ROOT / "src"
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = work / f"src-{commit[:12]}"
    if not target.exists():
        tmp = work / f"tmp-{commit[:12]}"
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        (tmp / "src").rename(target)
        tmp.rmdir()
    return target


# --- the child: one revision, one log --------------------------------------------------------------


def child(src: Path, log: Path, repeat: int, mode: str = "") -> dict[str, Any]:
    sys.path.insert(0, str(src))
    if mode == "runs":  # runs of buckets as arrays wherever allowed, however short (equivalence check)
        from logpulse.scoring import scorer as scorer_module

        scorer_module.RUN_COST = (0.0, 0.0)
    from logpulse.config import Settings
    from logpulse.formats.logpulse import parse_chunk
    from logpulse.model import Chunk

    try:  # since issue 17
        from logpulse.scoring.baselines import ScoringConfig
        from logpulse.scoring.clock import StreamClock
        from logpulse.scoring.scorer import CustomerScorer
    except ImportError:  # before: scorer and config in baselines, no clock
        from logpulse.scoring.baselines import CustomerScorer, ScoringConfig  # type: ignore[attr-defined,no-redef]

        StreamClock = None  # type: ignore[assignment,misc]

    data = log.read_bytes()
    chunks, offset = [], 0
    while offset < len(data):
        end = data.rfind(b"\n", offset, offset + CHUNK) + 1 if offset + CHUNK < len(data) else len(data)
        chunks.append(Chunk(str(log), 1, offset, data[offset:end]))
        offset = end
    t0 = time.process_time()
    parsed = [parse_chunk(c) for c in chunks]
    parse_s = time.process_time() - t0
    lines = sum(len(b) for p in parsed for b in p.batches.values())
    config = ScoringConfig.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    best, incidents = float("inf"), {}
    for _ in range(repeat):
        scorers: dict[str, Any] = {}
        clock = StreamClock() if StreamClock is not None else None
        final: dict[tuple[str, str, int], Any] = {}
        versions = 0
        t0 = time.process_time()
        for p in parsed:
            for customer, batch in p.batches.items():
                scorer = scorers.get(customer)
                if scorer is None:
                    scorer = scorers[customer] = CustomerScorer(customer, config)
                    if mode == "per-bucket":
                        scorer.vectorised = False
                for inc in scorer.score(batch).incidents:
                    final[(inc.customer_id, inc.kind, inc.start_ns)] = inc
                    versions += 1
            if clock is not None and p.batches:
                earliest = min(min(b.times) for b in p.batches.values() if b.times)
                for customer, tick in clock.advance(str(log), earliest, list(p.batches)):
                    for inc in scorers[customer].tick(tick):
                        final[(inc.customer_id, inc.kind, inc.start_ns)] = inc
                        versions += 1
        best = min(best, time.process_time() - t0)
        incidents = final
    digest = hashlib.sha256(
        json.dumps(
            sorted(
                (i.customer_id, i.kind, i.start_ns, i.end_ns, getattr(i, "status", ""), i.peak_score, i.requests)
                for i in incidents.values()
            )
        ).encode()
    ).hexdigest()[:12]
    kinds: dict[str, int] = {}
    for i in incidents.values():
        kinds[i.kind] = kinds.get(i.kind, 0) + 1
    return {
        "lines": lines,
        "parse_us_per_line": parse_s / lines * 1e6,
        "score_us_per_line": best / lines * 1e6,
        "score_s": best,
        "incidents": len(incidents),
        "versions": versions,
        "kinds": kinds,
        "digest": digest,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--busy-days", type=float, default=1.0)
    ap.add_argument("--sparse-days", type=float, default=30.0)
    ap.add_argument("--rev", action="append", default=[], help="git revision to compare (repeatable)")
    ap.add_argument("--log", type=Path, action="append", default=[], help="also score this logpulse-format log")
    ap.add_argument("--no-generated", action="store_true", help="only the --log files")
    ap.add_argument("--anomaly", action="store_true", help="also every bench_anomaly.py scenario's log")
    ap.add_argument(
        "--per-bucket", action="store_true", help="also the working tree with vectorised=False (the reference)"
    )
    ap.add_argument(
        "--runs", action="store_true", help="also the working tree with runs as arrays wherever allowed, however short"
    )
    ap.add_argument("--mode", default="", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help="best of this many scoring passes")
    ap.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "logpulse-bench-scoring")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", nargs=2, metavar=("SRC", "LOG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), args.repeat, args.mode)))
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    logs: list[tuple[str, Path]] = []
    if not args.no_generated:
        for name, days, seed in (("busy", args.busy_days, 1), ("sparse", args.sparse_days, 2)):
            path = args.work_dir / f"{name}-{args.lines}-{days:g}d.log"
            logs.append((f"{name} ({days:g} d)", make_log(path, args.lines, days, seed)))
    logs += [(p.name, p) for p in args.log]
    if args.anomaly:
        logs += anomaly_logs(args.work_dir)
    modes = ["per-bucket"] * args.per_bucket + ["runs"] * args.runs
    revs = [*args.rev, *modes, "."]
    sources = {rev: source_of("." if rev in modes else rev, args.work_dir) for rev in revs}
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    for name, log in logs:
        for rev in revs:
            flags = ["--mode", rev] if rev in modes else []
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(sources[rev]),
                    str(log),
                    "--repeat",
                    str(args.repeat),
                    *flags,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            label = {".": "working tree", "per-bucket": "tree, per bucket", "runs": "tree, runs always"}.get(rev, rev)
            r = {"data": name, "rev": label, **json.loads(out.splitlines()[-1])}
            results.append(r)
            print(
                f"{name:>24} {r['rev']:>14}: scoring {r['score_us_per_line']:6.2f} µs/line "
                f"(parse {r['parse_us_per_line']:.2f}), {r['lines']:,} lines, {r['incidents']} incidents "
                f"{r['kinds']} digest {r['digest']}",
                flush=True,
            )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
