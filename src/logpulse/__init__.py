"""logpulse: per-customer service-level numbers and anomaly incidents from API access logs."""

__version__ = "0.1.0"
