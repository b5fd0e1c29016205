"""Parse alone: lines per CPU second of the configured parser over a log file, in 1 MiB chunks.

What every workload pays before scoring, rollups and writes: `build_parser(...).parse_chunk` (the
format's parser and `formats.validate`) over the whole file, timed in CPU seconds of this process
(steadier than wall time on a shared machine), best of --repeat. The format comes from the usual
settings (LOG_FORMAT, NGINX_LOG_FORMAT, CUSTOMER_FROM, ... in the environment). To compare with
another checkout, run it again with that checkout's src/ first on PYTHONPATH.

    LOG_FORMAT=nginx NGINX_LOG_FORMAT='...' CUSTOMER_FROM='$http_x_customer_id' \\
        .venv/bin/python -m scripts.benchmarks.parsing /tmp/fleet/access-600000-40-7d-....log --repeat 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from logpulse.config import Settings
from logpulse.formats.registry import build_parser
from logpulse.model import Chunk

from .support import load_average

CHUNK = 1 << 20


def chunks_of(path: Path) -> list[Chunk]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        end = data.rfind(b"\n", offset, offset + CHUNK) + 1 or len(data)
        out.append(Chunk(str(path), 1, offset, data[offset:end]))
        offset = end
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    settings = Settings(_env_file=None)  # the environment's LOG_FORMAT and friends
    parser = build_parser(settings)
    chunks = chunks_of(args.log)
    best, lines, rejected = float("inf"), 0, 0
    for _ in range(args.repeat):
        lines = rejected = 0
        started = time.process_time()
        for c in chunks:  # each result dropped at once, as the dataflow passes it on
            parsed = parser.parse_chunk(c)
            lines += parsed.lines
            rejected += len(parsed.rejects)
        best = min(best, time.process_time() - started)
    print(
        json.dumps(
            {
                "log": str(args.log),
                "log_format": settings.log_format,
                "lines": lines,
                "rejected": rejected,
                "best_cpu_s": round(best, 3),
                "lines_per_cpu_s": round(lines / best),
                "load_average": load_average(),
            }
        )
    )


if __name__ == "__main__":
    main()
