"""Developer tools run from the repository root: `python -m scripts.benchmarks.NAME` (see benchmarks/)."""
