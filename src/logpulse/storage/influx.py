"""InfluxDB through its v1 HTTP API: line protocol on `/write`, InfluxQL on `/query`.

InfluxDB 1.x serves this API natively and 2.x / 3.x serve it as their v1 compatibility API, so this
one code path covers all three (`influxdb-client` only speaks the v2 API, which 1.x lacks, and Flux
is retired in 3.x). Authentication: `INFLUXDB_TOKEN` -> `Authorization: Token ...` (2.x/3.x),
otherwise `INFLUXDB_USERNAME`/`INFLUXDB_PASSWORD` -> basic auth (1.x).

`InfluxWriter` is synchronous (used by the dataflow's sink threads); `AsyncInfluxQuery` serves the
API. Both raise the typed errors below so callers can tell "database down" from "bad query".
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from logpulse.config import Settings


class InfluxError(Exception):
    """InfluxDB answered with an error that retrying will not fix (bad query, bad point, auth)."""


class InfluxRefused(InfluxError):
    """InfluxDB refused points of a write (400: a line it cannot parse, a field type conflict, points
    beyond the retention policy; 413: a body too large). It wrote the other points of the body."""

    @property
    def reason(self) -> str:
        """InfluxDB's own words (the `error` of its JSON answer)."""
        text = str(self)
        try:
            return str(orjson.loads(text.split(": ", 1)[1])["error"])
        except (IndexError, KeyError, TypeError, orjson.JSONDecodeError):
            return text

    @property
    def about_points(self) -> bool:
        """The refusal is about the points, not about where they go (a database or retention policy
        that does not exist is a setting to fix, not a bad point)."""
        return "database not found" not in self.reason and "retention policy not found" not in self.reason

    @property
    def beyond_retention_only(self) -> bool:
        """Only points older than the retention policy were dropped: nothing to keep or report."""
        return self.reason.startswith("partial write: points beyond retention policy dropped=")


class InfluxUnavailable(InfluxError):
    """InfluxDB is unreachable, timing out or answering 5xx: retrying later may succeed."""


def quote_ident(name: str) -> str:
    """Double-quote an InfluxQL identifier (e.g. `duration` is a keyword)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """Single-quote an InfluxQL string literal, escaping what could end it."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Connection:
    """Where InfluxDB is and how to authenticate: shared by writer and query client."""

    url: str
    database: str
    retention_policy: str = ""
    username: str = ""
    password: str = ""
    token: str = ""
    timeout_s: float = 30.0
    gzip: bool = False

    @classmethod
    def from_settings(cls, s: Settings) -> Connection:
        return cls(
            url=s.influxdb_url.rstrip("/"),
            database=s.influxdb_database,
            retention_policy=s.influxdb_retention_policy,
            username=s.influxdb_username,
            password=s.influxdb_password,
            token=s.influxdb_token,
            timeout_s=s.influxdb_timeout_s,
            gzip=s.influxdb_gzip,
        )

    def headers(self) -> dict[str, str]:
        """Auth, and gzip'd answers only with INFLUXDB_GZIP: httpx asks for gzip by default, and
        compressing a 7-day 15-minute series answer (176 KB) cost influxd 6 of its 10 ms of CPU on
        loopback (measured)."""
        headers = {"Accept-Encoding": "gzip" if self.gzip else "identity"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers

    def auth(self) -> httpx.BasicAuth | None:
        if self.username and not self.token:
            return httpx.BasicAuth(self.username, self.password)
        return None

    def client_options(self, pool_size: int, *, connect_timeout_s: float) -> dict[str, Any]:
        """httpx client arguments: base URL, auth, explicit timeouts, a keep-alive pool."""
        return {
            "base_url": self.url,
            "headers": self.headers(),
            "auth": self.auth(),
            "timeout": httpx.Timeout(self.timeout_s, connect=connect_timeout_s),
            "limits": httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
        }

    def write_params(self, rp: str | None = None) -> dict[str, str]:
        """`rp`: a retention policy other than the configured one (rollups, marks)."""
        params = {"db": self.database, "precision": "ns"}
        if rp or self.retention_policy:
            params["rp"] = rp or self.retention_policy
        return params

    def query_form(self, q: str, *, with_db: bool = True) -> dict[str, str]:
        """The `/query` parameters, sent as a POST form body so that a query's size never matters
        (a URL is limited to a few kilobytes; InfluxDB reads `q` from the body as well)."""
        params = {"q": q, "epoch": "ns"}
        if with_db:
            params["db"] = self.database
        return params


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise InfluxUnavailable(f"InfluxDB {resp.status_code}: {resp.text[:300]}")
    if resp.status_code in (400, 413):
        raise InfluxRefused(f"InfluxDB {resp.status_code}: {resp.text[:2000]}")
    if resp.status_code >= 400:
        raise InfluxError(f"InfluxDB {resp.status_code}: {resp.text[:300]}")


def _results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-statement results of a /query answer; raises on a statement error."""
    if "error" in body:
        raise InfluxError(body["error"])
    results: list[dict[str, Any]] = body.get("results", [])
    for r in results:
        if "error" in r:
            raise InfluxError(r["error"])
    return results


def series_rows(result: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Flatten one statement result into (tags, row-as-dict) pairs."""
    rows: list[tuple[dict[str, str], dict[str, Any]]] = []
    for s in result.get("series", []) or []:
        cols = s["columns"]
        tags = s.get("tags", {}) or {}
        for values in s.get("values", []) or []:
            rows.append((tags, dict(zip(cols, values, strict=True))))
    return rows


class InfluxWriter:
    """Synchronous writes of line protocol (gzip) plus the few admin queries the processor needs.

    Thread-safe: one keep-alive connection pool shared by the sink's writer threads.
    """

    def __init__(self, conn: Connection, *, pool_size: int = 8) -> None:
        self.conn = conn
        self._client = httpx.Client(**conn.client_options(pool_size, connect_timeout_s=5.0))

    def write(self, lines: Sequence[str], *, rp: str | None = None) -> None:
        """POST one batch of line-protocol lines (into retention policy `rp`, else the configured one);
        raises InfluxUnavailable / InfluxError. Gzip level 1 when INFLUXDB_GZIP (off by default: on
        loopback compressing costs the writer more CPU than the bytes it saves, see docs/performance.md)."""
        body = "\n".join(lines).encode("utf-8")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.conn.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            resp = self._client.post("/write", params=self.conn.write_params(rp), content=body, headers=headers)
        except httpx.TransportError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.conn.url} (INFLUXDB_URL): {exc}") from exc
        _raise_for(resp)

    def query(self, q: str, *, with_db: bool = True) -> list[dict[str, Any]]:
        """Run InfluxQL (POST, so statements that change state are allowed)."""
        try:
            resp = self._client.post("/query", data=self.conn.query_form(q, with_db=with_db))
        except httpx.TransportError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.conn.url} (INFLUXDB_URL): {exc}") from exc
        _raise_for(resp)
        return _results(resp.json())

    def ping(self) -> bool:
        try:
            return self._client.get("/ping").status_code == 204
        except httpx.TransportError:
            return False

    def close(self) -> None:
        self._client.close()


class AsyncInfluxQuery:
    """Read-only InfluxQL over the v1 API for the web API (one client per application lifespan)."""

    def __init__(self, conn: Connection, *, pool_size: int = 8) -> None:
        """`pool_size` connections at most; more concurrent queries wait for one, in order. A small
        pool is cheaper: httpcore checks every pooled connection (a socket poll) each time a request
        is queued or finished, which was 14 % of the API's CPU with 32 clients and up to 64
        connections, while influxd has no more cores than a handful of queries keep busy."""
        self.conn = conn
        self._client = httpx.AsyncClient(**conn.client_options(pool_size, connect_timeout_s=2.0))

    async def query(self, q: str) -> list[dict[str, Any]]:
        """Run one or more `;`-separated read statements; returns one result per statement.

        POST with a form body: InfluxDB 1.x accepts reads on POST as well, and the body has no size limit.
        """
        try:
            resp = await self._client.post("/query", data=self.conn.query_form(q))
        except httpx.TransportError as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.conn.url} (INFLUXDB_URL): {exc}") from exc
        _raise_for(resp)
        return _results(orjson.loads(resp.content))  # 2-3x faster than json on histogram answers

    async def ping(self) -> bool:
        try:
            return (await self._client.get("/ping", timeout=2.0)).status_code == 204
        except httpx.TransportError:
            return False

    async def aclose(self) -> None:
        await self._client.aclose()
