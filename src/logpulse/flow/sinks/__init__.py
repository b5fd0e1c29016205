"""Where the dataflow writes: InfluxDB (acknowledged, retried) and the dead-letter file."""
