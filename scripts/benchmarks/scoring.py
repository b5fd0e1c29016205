"""Cost of anomaly scoring per line, in-process, on busy and on sparse traffic; any git revisions
compared with the working tree in one run.

Why in-process: end to end (`ingest`) the scorer's share drowns in parsing, rollups and
InfluxDB; here the same chunks (1 MiB, parsed beforehand, as the dataflow's `parse` step emits them)
go through `CustomerScorer.score` per customer batch and, as in the dataflow, the stream clock's
`Tick`s go to every known customer after each chunk. Only scoring and the clock are timed (CPU time
of this process, best of `--repeat`); parsing a line is timed too, as a yardstick of what a line
costs anyway.

Data (generated once into --work-dir, 50 customers, logpulse format, time-ordered like a backfill):
* busy:   --lines over --busy-days (1 day: ~12 requests per customer per 30 s bucket);
* sparse: --lines over --sparse-days (30 days: ~0.2 requests per customer-bucket, ~1 per non-empty one);
* any --log FILE (e.g. an anomaly scenario's log, `scenarios.py`) as well;
* any --nginx-fleet-log FILE: the nginx fleet's access log (`fleet.py`, its --work-dir keeps it),
  parsed as `fleet` has `logpulse ingest` parse it (LOG_FORMAT=nginx, `workloads.NGINX_FLEET_FORMAT`).

Each revision runs in a child process (`scoring_child`) with PYTHONPATH set to that revision's `src`
(`git archive REV src`); the child also prints a digest of the incidents it produced (kind, start,
end, status, peak, requests, of each incident's last version), so two revisions that make the same
decisions print the same digest.

    .venv/bin/python -m scripts.benchmarks.scoring --rev 6194107^ --rev main [--lines 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .scenarios import SCENARIOS, write_log
from .support import ROOT, write_backfill
from .workloads import NGINX_FLEET_FORMAT

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def anomaly_logs(work: Path) -> list[tuple[str, Path]]:
    """The logs the anomaly benchmark ingests (same generators and seeds), written once into `work`:
    two revisions that print the same digests on them report the same incidents there."""
    logs = []
    for sc in SCENARIOS:
        path = work / f"anomaly-{sc.seed}.log"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            write_log(sc, tmp)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--busy-days", type=float, default=1.0)
    ap.add_argument("--sparse-days", type=float, default=30.0)
    ap.add_argument("--rev", action="append", default=[], help="git revision to compare (repeatable)")
    ap.add_argument("--log", type=Path, action="append", default=[], help="also score this logpulse-format log")
    ap.add_argument(
        "--nginx-fleet-log", type=Path, action="append", default=[], help="also score this nginx fleet log (fleet.py)"
    )
    ap.add_argument("--no-generated", action="store_true", help="only the --log files")
    ap.add_argument("--anomaly", action="store_true", help="also every anomaly scenario's log (scenarios.py)")
    ap.add_argument(
        "--per-bucket", action="store_true", help="also the working tree with vectorised=False (the reference)"
    )
    ap.add_argument(
        "--runs", action="store_true", help="also the working tree with runs as arrays wherever allowed, however short"
    )
    ap.add_argument("--repeat", type=int, default=1, help="best of this many scoring passes")
    ap.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "logpulse-bench-scoring")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    logs: list[tuple[str, Path]] = []
    if not args.no_generated:
        for name, days, seed in (("busy", args.busy_days, 1), ("sparse", args.sparse_days, 2)):
            path = args.work_dir / f"{name}-{args.lines}-{days:g}d.log"
            logs.append((f"{name} ({days:g} d)", write_backfill(path, args.lines, days, seed, NOW)))
    logs += [(p.name, p) for p in args.log]
    nginx = {str(p) for p in args.nginx_fleet_log}
    logs += [(p.name, p) for p in args.nginx_fleet_log]
    fleet_format = {"LOG_FORMAT": "nginx", "NGINX_LOG_FORMAT": NGINX_FLEET_FORMAT}
    fleet_format["CUSTOMER_FROM"] = "$http_x_customer_id"
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
                    "-m",
                    "scripts.benchmarks.scoring_child",
                    str(log),
                    "--repeat",
                    str(args.repeat),
                    *flags,
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(sources[rev]), **(fleet_format if str(log) in nginx else {})},
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
