"""The dataflow: steps wired together, how it runs, and where it writes."""
