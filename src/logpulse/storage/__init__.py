"""Storage: the InfluxDB v1 HTTP client, a private influxd, and the point schema."""
