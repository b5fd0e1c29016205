"""Anomaly scoring: per-customer baselines and incidents."""
