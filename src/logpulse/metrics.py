"""Prometheus metrics of the processor (the API has its own in `logpulse.api`).

Served on `METRICS_PORT` (+ process index) by `logpulse process`. `logpulse_backlog_bytes` is the
figure to scale workers on: bytes between each file's read offset and its end.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

BYTES_READ = Counter("logpulse_bytes_read", "Bytes of complete lines read from log files")
LINES_READ = Counter("logpulse_lines_read", "Log lines read from files (accepted + rejected)")
LINES_WRITTEN = Counter("logpulse_lines_written", "Request points acknowledged by InfluxDB")
LINES_REJECTED = Counter("logpulse_lines_rejected", "Malformed lines sent to the dead-letter file")
LINES_REJECTED_BY_CHECK = Counter(
    "logpulse_lines_rejected_by_check",
    "Lines sent to the dead-letter file, by what refused them: format, time, status, duration, "
    "customer_id, path (formats.validate) or influxdb",
    ["check"],
)
LINES_NO_CUSTOMER = Counter(
    "logpulse_lines_no_customer", "Rejected lines without a customer (CUSTOMER_FROM empty, '-' or no match)"
)
ROLLUP_POINTS_WRITTEN = Counter("logpulse_rollup_points_written", "Rollup point upserts acknowledged by InfluxDB")
INCIDENTS_WRITTEN = Counter("logpulse_incidents_written", "Incident upserts acknowledged by InfluxDB")
WRITE_RETRIES = Counter("logpulse_write_retries", "InfluxDB write attempts that failed and were retried")
WRITE_LATENCY = Histogram(
    "logpulse_write_seconds",
    "Latency of one InfluxDB write request (successful)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# alert delivery
ALERTS_SENT = Counter("logpulse_alerts_sent", "Notifications accepted by a receiver", ["receiver"])
ALERTS_FAILED = Counter("logpulse_alerts_failed", "Delivery attempts that failed (retried later)", ["receiver"])
ALERTS_QUEUED = Gauge("logpulse_alerts_queued", "Notifications waiting in the outbox")
BACKLOG_BYTES = Gauge("logpulse_backlog_bytes", "Bytes behind the end of each tailed file", ["path"])

# Tailing: descriptors held and files tracked, against MAX_OPEN_FILES and the forget horizon
OPEN_FILES = Gauge("logpulse_open_files", "Log files this process holds open (at most MAX_OPEN_FILES)")
TRACKED_FILES = Gauge("logpulse_tracked_files", "Log files with a checkpoint (known identities) in this process")


def serve_metrics(port: int) -> None:
    """Expose the default registry over HTTP on all interfaces of this host (0 = disabled)."""
    if port:
        start_http_server(port)


def backlog_bytes() -> int:
    """Unread bytes of this process's tailed files (the sum of logpulse_backlog_bytes over its paths)."""
    return int(sum(sample.value for metric in BACKLOG_BYTES.collect() for sample in metric.samples))


_TOTALS = {
    "bytes": BYTES_READ,
    "read": LINES_READ,
    "written": LINES_WRITTEN,
    "rejected": LINES_REJECTED,
    "incidents": INCIDENTS_WRITTEN,
    "retries": WRITE_RETRIES,
}


def _value(counter: Counter) -> float:
    """A counter's value through its public `collect()` (the `<name>_total` sample)."""
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return sample.value
    return 0.0


def totals() -> dict[str, float]:
    """This process's counters as plain numbers (for the ingest summary and progress bar)."""
    return {name: _value(counter) for name, counter in _TOTALS.items()}
