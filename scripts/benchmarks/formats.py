"""Log-format benchmark: each format's parse and ingest rate, measured in one run, and
`POST /ingest` throughput with 32 concurrent clients.

The same requests (same seed) are written in every format by `logpulse generate --format X`, then:
  1. parse      in-process `parse_chunk` over the file in 1 MiB chunks: lines/s (best of --repeat,
                formats alternating so that machine noise hits all alike)
  2. ingest     `logpulse ingest FILE` with LOG_FORMAT=X into an empty database of a private
                influxd, scoring off and on (defaults otherwise): lines/s until everything is
                durable, and lines per CPU second of the ingest process (steadier on a shared
                machine); best of --repeat, formats alternating; ratios to the logpulse format.
                With scoring off, parsing is the largest share of the processor's own work.
  3. POST /ingest  `logpulse serve` with LOG_FORMAT=nginx, wrk with 32 connections posting bodies of
                --body-lines nginx lines for --wrk-s seconds: accepted lines/s (every 202 is fsynced;
                --wrk-s 0 skips it)
  4. validation  CPU µs per line of each format's parser alone and with `formats.validate` (in-process,
                best of --repeat + 5, interleaved), and that difference as a share of the ingest
                CPU per line (scoring off)

With --baseline-src DIR, steps 1 and 2 also parse and ingest the nginx file in a child process with
DIR (another checkout's src/) first on its PYTHONPATH, alternating with the current src, and report
the ratios current/baseline: a parser change against the code before it, in one run. --formats
narrows steps 1, 2 and 4.

    .venv/bin/python -m scripts.benchmarks.formats --lines 500000 --json docs/bench/bench_formats.json
    .venv/bin/python -m scripts.benchmarks.formats --formats nginx --baseline-src /tmp/base/src --wrk-s 0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from logpulse.formats.registry import FormatOptions, build_parser
from logpulse.generator import FORMATS, GeneratorOptions, generate
from logpulse.model import Chunk
from logpulse.storage.influxd import LocalInfluxd

from .support import running_api

CHUNK = 1 << 20


def make_file(work: Path, fmt: str, lines: int, seed: int) -> Path:
    path = work / f"requests-{lines}-{seed}.{fmt}.log"
    if not path.exists():
        generate(
            GeneratorOptions(
                out=path,
                count=lines,
                rate=lines / 86400,
                customers=50,
                days=1,
                seed=seed,
                format=fmt,
                backfill_max_lines=None,
            )
        )
    return path


def parse_rate(fmt: str, path: Path) -> float:
    parser = build_parser(FormatOptions(log_format=fmt))
    data = path.read_bytes()
    started = time.perf_counter()
    lines = offset = 0
    while offset < len(data):
        end = data.rfind(b"\n", offset, offset + CHUNK) + 1 or len(data)
        parsed = parser.parse_chunk(Chunk(str(path), 1, offset, data[offset:end]))
        if parsed.rejects:
            raise SystemExit(f"{fmt}: {parsed.rejects[0]}")
        lines += parsed.lines
        offset = end
    return lines / (time.perf_counter() - started)


def baseline_parse_rate(src: Path, path: Path) -> float:
    """`parse_rate` of the nginx file with another checkout's src/ imported, in a child process."""
    code = (
        "from pathlib import Path; from scripts.benchmarks.formats import parse_rate; "
        f"print(parse_rate('nginx', Path({str(path)!r})))"
    )
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ingest_rate(env: dict[str, str], path: Path) -> tuple[float, float, str]:
    """(lines per wall second, lines per CPU second of the `logpulse ingest` process, its summary).

    On a shared machine the wall rate swings with the neighbours' load; the processor's own CPU
    time per line (influxd excluded) is the steadier figure for comparing formats."""
    started, cpu = time.perf_counter(), _children_cpu_s()
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(path)], env=env, capture_output=True, text=True
    )
    seconds, cpu_s = time.perf_counter() - started, _children_cpu_s() - cpu
    if done.returncode != 0:
        raise SystemExit(f"ingest failed: {done.stderr[-2000:]}")
    read = int(re.search(r"read (\d+) lines", done.stdout).group(1))  # type: ignore[union-attr]
    written = int(re.search(r"written (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    if written != read:
        raise SystemExit(f"not every line written: {done.stdout}")
    return read / seconds, read / cpu_s, done.stdout.strip()


def post_ingest(env: dict[str, str], work: Path, nginx_file: Path, body_lines: int, seconds: int) -> dict[str, float]:
    spool = work / "ingest_spool.log"
    spool.unlink(missing_ok=True)
    env = {**env, "LOG_FORMAT": "nginx", "INGEST_SPOOL_PATH": str(spool)}
    with running_api(env) as api:
        with nginx_file.open() as f:
            body = "".join(next(f) for _ in range(body_lines))
        script = work / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/plain"\n'
            f"wrk.body = {json.dumps(body)}\n"
            "done = function(summary, latency, requests)\n"
            '  io.write(string.format("STATUS non2xx=%d\\n", summary.errors.status))\nend\n'
        )
        url = f"{str(api.base_url).rstrip('/')}/ingest"
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", "32", "-d", f"{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = int(re.search(r"non2xx=(\d+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"Latency\s+([\d.]+\w+)", out).group(1)  # type: ignore[union-attr]
    spooled = sum(1 for _ in spool.open()) if spool.exists() else 0
    return {
        "requests_per_s": rps,
        "lines_per_s": rps * body_lines,
        "mean_latency": p50,
        "non_2xx": non2xx,
        "spooled_lines": spooled,
        "body_lines": body_lines,
    }  # type: ignore[dict-item]


def validation_cpu_us(fmt: str, path: Path, rounds: int) -> tuple[float, float]:
    """(CPU µs per line of the format's parser alone, of the same with `formats.validate`): best of
    `rounds`, interleaved; CPU time, which the neighbours' load disturbs less than wall time."""
    validated = build_parser(FormatOptions(log_format=fmt))
    inner = validated.inner  # type: ignore[attr-defined]
    data = path.read_bytes()
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, parse in enumerate((inner.parse_chunk, validated.parse_chunk)):
            started, offset, lines = time.process_time(), 0, 0
            while offset < len(data):
                end = data.rfind(b"\n", offset, offset + CHUNK) + 1 or len(data)
                lines += parse(Chunk(str(path), 1, offset, data[offset:end])).lines
                offset = end
            best[i] = min(best[i], (time.process_time() - started) / lines * 1e6)
    return best[0], best[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--body-lines", type=int, default=100)
    ap.add_argument("--wrk-s", type=int, default=10)
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=Path("bench_formats.json"))
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of " + ",".join(FORMATS))
    ap.add_argument(
        "--baseline-src", type=Path, default=None, help="also parse and ingest nginx with this src/ (alternating)"
    )
    args = ap.parse_args()
    formats = tuple(f for f in FORMATS if f in args.formats.split(","))
    kinds = formats + (("nginx baseline",) if args.baseline_src else ())
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="logpulse-formats-"))
    work.mkdir(parents=True, exist_ok=True)
    files = {fmt: make_file(work, fmt, args.lines, args.seed) for fmt in formats}
    if args.baseline_src:
        files["nginx baseline"] = make_file(work, "nginx", args.lines, args.seed)
    parse: dict[str, float] = {}
    for _ in range(args.repeat + 1):
        for fmt in formats:
            parse[fmt] = max(parse.get(fmt, 0.0), parse_rate(fmt, files[fmt]))
        if args.baseline_src:
            rate = baseline_parse_rate(args.baseline_src, files["nginx baseline"])
            parse["nginx baseline"] = max(parse.get("nginx baseline", 0.0), rate)
    print("parse (lines/s):", {f: round(v) for f, v in parse.items()}, flush=True)
    validation = {fmt: validation_cpu_us(fmt, files[fmt], args.repeat + 5) for fmt in formats}
    print("parse alone / validated (CPU µs per line):", validation, flush=True)
    results: dict[str, object] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "parse_lines_per_s": parse,
        "validation_cpu_us_per_line": validation,
    }
    with LocalInfluxd.start(work / "influxdb") as influx:
        base = {
            **os.environ,
            "LOGPULSE_ENV_FILE": "/nonexistent",
            "INFLUXDB_URL": influx.url,
            "DEAD_LETTER_PATH": str(work / "rejected.jsonl"),
            "INGEST_SPOOL_PATH": "",
        }
        ingest: dict[str, dict[str, float]] = {"off": {}, "on": {}}
        per_cpu: dict[str, dict[str, float]] = {"off": {}, "on": {}}
        summaries: dict[str, str] = {}
        for r in range(args.repeat):
            for scoring in ("off", "on"):
                for fmt in kinds:
                    env = {
                        **base,
                        "LOG_FORMAT": fmt.split()[0],
                        "SCORING_ENABLED": "true" if scoring == "on" else "false",
                        "INFLUXDB_DATABASE": f"bench_{fmt.replace(' ', '_')}_{scoring}_{r}",
                    }
                    if fmt.endswith("baseline"):
                        env["PYTHONPATH"] = str(args.baseline_src.resolve())
                    rate, cpu_rate, summary = ingest_rate(env, files[fmt])
                    print(
                        f"ingest {fmt}, scoring {scoring}, round {r + 1}: {rate:,.0f} lines/s, "
                        f"{cpu_rate:,.0f} lines per CPU second",
                        flush=True,
                    )
                    per_cpu[scoring][fmt] = max(per_cpu[scoring].get(fmt, 0.0), cpu_rate)
                    if rate > ingest[scoring].get(fmt, 0.0):
                        ingest[scoring][fmt], summaries[f"{fmt} scoring {scoring}"] = rate, summary
        results["ingest_lines_per_s"] = ingest
        results["ingest_lines_per_cpu_s"] = per_cpu
        reference = "logpulse" if "logpulse" in formats else formats[0]
        for name, table in (("ingest_ratio", ingest), ("ingest_cpu_ratio", per_cpu)):
            results[f"{name}_to_{reference}"] = {
                scoring: {f: rates[f] / rates[reference] for f in kinds} for scoring, rates in table.items()
            }
        if args.baseline_src:
            results["baseline_src"] = str(args.baseline_src)
            results["parse_ratio_nginx_to_baseline"] = parse["nginx"] / parse["nginx baseline"]
            for name, table in (("ingest_ratio", ingest), ("ingest_cpu_ratio", per_cpu)):
                results[f"{name}_nginx_to_baseline"] = {
                    scoring: rates["nginx"] / rates["nginx baseline"] for scoring, rates in table.items()
                }
        results["ingest_summaries"] = summaries
        results["load_average"] = os.getloadavg()
        if args.wrk_s:
            results["post_ingest"] = post_ingest(
                {**base, "INFLUXDB_DATABASE": "bench_api"}, work, files["nginx"], args.body_lines, args.wrk_s
            )
    print()
    print(
        f"| format | parse lines/s | ingest, scoring off: lines/s (vs {reference}) | lines per CPU s (vs {reference}) "
        f"| ingest, scoring on: lines/s (vs {reference}) | lines per CPU s (vs {reference}) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for fmt in kinds:
        cells = [f"{parse[fmt]:,.0f}" if fmt in parse else "-"]
        for scoring in ("off", "on"):
            for table in (ingest, per_cpu):
                rates = table[scoring]
                cells.append(f"{rates[fmt]:,.0f} ({rates[fmt] / rates[reference]:.0%})")
        print(f"| {fmt} | {' | '.join(cells)} |")
    shares = {f: (v - a) * per_cpu["off"][f] / 1e6 for f, (a, v) in validation.items()}
    results["validation_share_of_ingest_cpu"] = shares
    print(
        "\nformats.validate, share of the ingest CPU per line (scoring off):",
        {f: f"{s:.1%}" for f, s in shares.items()},
    )
    if args.baseline_src:
        ratios = {k: results[k] for k in results if k.endswith("to_baseline")}
        print("\nnginx, current src / baseline src:", json.dumps(ratios, indent=1))
    print("load average:", results["load_average"])
    if args.wrk_s:
        pi = results["post_ingest"]
        print(f"\nPOST /ingest (nginx, 32 connections, {args.body_lines} lines per request): {pi}")  # type: ignore[index]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
