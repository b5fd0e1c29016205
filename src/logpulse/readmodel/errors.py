"""What the read model refuses, as exceptions the HTTP layer maps to statuses (`api/errors.py`).

The read model raises them without knowing about HTTP; InfluxDB's own errors
(`storage.influx.InfluxError`, `InfluxUnavailable`) pass through unchanged.
"""

from __future__ import annotations


class BadRequest(Exception):
    """A request parameter is invalid: 422 with a message that names it and says why."""


class NotFound(Exception):
    """The resource (e.g. a customer) does not exist: 404."""
