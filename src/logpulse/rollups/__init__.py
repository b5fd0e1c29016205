"""Rollups: per customer and window aggregates written under an identity that makes rewrites idempotent."""
