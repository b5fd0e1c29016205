"""CPU seconds of each stage of the rollup path, in process, for one logpulse-format log: no Bytewax
and no InfluxDB, so what the number of customers costs the processor's rollups is seen apart from
the engine, the writer threads and influxd (whose share of an ingest `customers` includes).

The file is cut as the source cuts it (READ_CHUNK_BYTES, then `split_at_segments`), each chunk
parsed, turned into a rollup part and given to one `RollupLogic` (the `ingest` one: flushes only at
segment ends and the end of input), and every point the step emits encoded by
`rollup_rows_lines`, as the sink does. Prints CPU seconds per stage, the points, and the SHA-256 of
all their lines in order (equal between two versions of the code: the same points, byte for byte).

    .venv/bin/python -m scripts.benchmarks.rollup_stages FILE      # PYTHONPATH=<other src> to compare
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logpulse.config import Settings
from logpulse.formats.registry import build_parser
from logpulse.model import Chunk, RollupBatch
from logpulse.rollups.aggregate import rollup_part
from logpulse.rollups.identity import split_at_segments
from logpulse.rollups.step import RollupLogic
from logpulse.storage.points import rollup_rows_lines

from .support import load_average


def stages(path: Path, settings: Settings) -> dict[str, Any]:
    """CPU seconds per stage over the whole file, the points written and their lines' digest."""
    parser = build_parser(settings)
    logic = RollupLogic.builder(settings.rollup_segment_bytes, 30.0, 3600.0, recoverable=False)(None)
    cpu = dict.fromkeys(("parse", "rollup_part", "rollup_step_chunks", "rollup_step_end", "lines"), 0.0)
    digest = hashlib.sha256()
    points = 0

    def timed(stage: str, call: Callable[[], Any]) -> Any:
        started = time.process_time()
        result = call()
        cpu[stage] += time.process_time() - started
        return result

    def encode(batches: list[RollupBatch]) -> None:
        nonlocal points
        for rows in (r for batch in batches for r in batch.rows):
            lines = timed("lines", lambda rows=rows: rollup_rows_lines(rows))
            points += len(lines)
            digest.update("".join(line + "\n" for line in lines).encode())

    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        end = data.rfind(b"\n", offset, offset + settings.read_chunk_bytes) + 1 or len(data)
        for chunk in split_at_segments(Chunk(str(path), 1, offset, data[offset:end]), settings.rollup_segment_bytes):
            parsed = timed("parse", lambda chunk=chunk: parser.parse_chunk(chunk))
            parsed.path, parsed.span = chunk.path, (chunk.file_key, chunk.offset, chunk.offset + len(chunk.data))
            part = timed("rollup_part", lambda parsed=parsed: rollup_part(parsed))
            if part is not None:
                encode(timed("rollup_step_chunks", lambda part=part: logic.on_batch([part[1]]))[0])
        offset = end
    encode(timed("rollup_step_end", logic.on_eof)[0])
    return {"cpu_s": cpu, "points": points, "sha256": digest.hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path, help="a logpulse-format log (e.g. one the customers benchmark wrote)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    result = {"file": str(args.file), "load_average_before": load_average()}
    result |= stages(args.file, Settings(_env_file=None))  # type: ignore[call-arg]
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
