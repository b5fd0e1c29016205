"""Benchmarks: each module measures one part against its target, run from the repository root.

    .venv/bin/python -m scripts.benchmarks.NAME --help

ingest (InfluxDB's ceiling vs `logpulse ingest`, disk, RSS), api (cold reads from rollups), slo (what
SLO fields cost), formats (parse and ingest rate per log format, POST /ingest), parsing (parse alone,
lines per CPU second), tailing (the file source, this tree against another), freshness (append to
visible), anomaly (detection quality on logs with known incidents), scoring (the scorer's cost per
line, revisions compared). What they share is in
`support` (and `scenarios`, the anomaly logs); they import the product, never the tests. Today's
figures and their commands: docs/performance.md.
"""
