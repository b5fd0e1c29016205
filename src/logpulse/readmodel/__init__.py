"""The read model: what the API answers, computed from InfluxDB (rollups, raw points, incidents).

Imports run one way: `logpulse.api` (HTTP) uses this package, which uses `logpulse.storage`; nothing
here imports the HTTP layer.
"""
