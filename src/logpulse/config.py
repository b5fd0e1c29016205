"""Configuration: one `Settings` object, read from the environment and `.env.local`.

Every value can be overridden by an environment variable of the same name (case-insensitive);
`.env.local` in the working directory (or the file named by `LOGPULSE_ENV_FILE`) supplies defaults.
docs/configuration.md lists every field below: `python -m logpulse.config_docs --write` writes it.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_RETENTION = r"^(INF|inf|keep|[1-9][0-9]*[hdw])$"
"""An InfluxDB retention duration of at least an hour, or INF / keep."""


def env_file_path() -> str:
    """The dotenv file settings are read from (LOGPULSE_ENV_FILE, default .env.local)."""
    return os.environ.get("LOGPULSE_ENV_FILE", ".env.local")


class Settings(BaseSettings):
    """All knobs of logpulse. Field names are the environment variable names."""

    model_config = SettingsConfigDict(env_file=env_file_path(), env_file_encoding="utf-8", extra="ignore")

    # InfluxDB (v1 HTTP API: native on 1.x, compatibility API on 2.x / 3.x)
    influxdb_url: str = Field("http://127.0.0.1:8086", description="Base URL of InfluxDB's HTTP API")
    influxdb_database: str = Field("logpulse", description="Database (1.x) or bucket mapping (2.x/3.x)")
    influxdb_retention_policy: str = Field("", description="Retention policy to write into; empty = default")
    influxdb_username: str = Field("", description="1.x user (sent as basic auth)")
    influxdb_password: str = Field("", description="1.x password")
    influxdb_token: str = Field("", description="2.x/3.x token for the v1 compatibility API")
    influxdb_timeout_s: float = Field(30.0, description="HTTP timeout for one InfluxDB request")
    influxdb_create_database: bool = Field(True, description="Create the database if missing (1.x)")

    # Log input
    log_path: str = Field("data/api_requests.log", description="Log file path or glob; several separated by ','")
    start_at: Literal["beginning", "end"] = Field(
        "beginning", description="Where a file never seen before is read from"
    )
    poll_interval_s: float = Field(0.2, description="How often a tailed file at its end is checked for new data")
    read_chunk_bytes: int = Field(1024 * 1024, description="Bytes read from a file per source batch")
    dead_letter_path: str = Field(
        "data/rejected.jsonl", description="Where malformed lines are quarantined (JSON lines)"
    )
    max_future_s: float = Field(
        300.0, ge=0, description="Lines dated more than this many seconds after this host's clock are rejected"
    )
    max_duration_s: float = Field(86400.0, gt=0, description="Lines with a longer duration (seconds) are rejected")

    # Log tailing: discovery, descriptors, checkpoint state
    log_exclude: str = Field("", description="Globs of files never read, though LOG_PATH matches them; ',' separated")
    discover_interval_s: float = Field(1.0, gt=0, description="How often LOG_PATH globs are expanded again")
    tail_shards: int = Field(
        1, ge=1, description="`process`: partitions per LOG_PATH pattern (files spread by fingerprint); keep it fixed"
    )
    max_open_files: int = Field(128, ge=1, description="Log files a process holds open at once; others wait")
    close_idle_s: float = Field(10.0, gt=0, description="A file at its end this long is closed (reopened on growth)")
    forget_after_s: float = Field(
        86400.0, gt=0, description="Checkpoints of files not seen on disk this long are forgotten"
    )

    # Dataflow
    workers: int = Field(1, ge=1, description="Bytewax worker threads per process")
    processes: int = Field(1, ge=1, description="Bytewax processes on this host")
    recovery_dir: str = Field("data/recovery", description="Bytewax recovery (snapshot) directory for `process`")
    snapshot_interval_s: float = Field(5.0, gt=0, description="Seconds between recovery snapshots (epoch length)")
    write_batch_points: int = Field(10_000, ge=1, description="Points per InfluxDB write request")
    write_parallelism: int = Field(2, ge=1, description="Concurrent write requests per worker")
    write_give_up_s: float = Field(300.0, gt=0, description="Exit non-zero after InfluxDB failed this long")
    stop_grace_s: float = Field(
        5.0, gt=0, description="After Ctrl-C/SIGTERM, a processor drain or API answer still running this long is cut"
    )
    metrics_port: int = Field(0, ge=0, description="Processor Prometheus port (0 = off); process i uses port+i")

    # Anomaly scoring: what counts as an incident
    scoring_enabled: bool = Field(True, description="Score batches for anomalies and incidents")
    scoring_sensitivity: Literal["low", "medium", "high"] = Field(
        "medium", description="Evidence an incident needs: p-value <= 1e-9 (low), 1e-7 (medium), 1e-5 (high)"
    )
    scoring_latency_ratio: float = Field(
        1.3, gt=1, description="Smallest slowdown worth an incident (typical latency x this)"
    )
    scoring_error_increase: float = Field(
        0.03, gt=0, lt=1, description="Smallest rise of the failure rate worth an incident (0.03 = 3 points)"
    )
    scoring_traffic_factor: float = Field(
        2.0, gt=1, description="Traffic below 1/this or above this x the expected volume is an incident"
    )
    scoring_new_normal_s: float = Field(
        1800.0, ge=0, description="A change lasting this long is resolved as the new normal (0 = never)"
    )
    scoring_bucket_s: float = Field(30.0, gt=0, description="Event-time bucket length of the incident tests")
    scoring_shards: int = Field(
        64,
        ge=1,
        le=4096,
        description="Customers are scored in this many shards (spread over workers); changing it re-learns baselines",
    )

    # SLOs and alert delivery
    slo_targets: str = Field(
        "default=99.5", description="Availability targets in %: 'default=99.5,cust_7=99.9' (empty = no SLOs)"
    )
    slo_window_days: int = Field(30, ge=1, description="Window of the error budget, in days")
    alertmanager_url: str = Field("", description="Alertmanager base URL; incidents are posted to /api/v2/alerts")
    webhook_url: str = Field("", description="URL that receives each incident's firing and resolved JSON")
    alert_max_age_s: float = Field(0.0, ge=0, description="Skip alerts for incidents older than this (0 = any age)")
    alert_give_up_s: float = Field(
        300.0, gt=0, description="`ingest` exits non-zero if its alerts could not be delivered for this long"
    )

    # API
    api_host: str = Field("127.0.0.1", description="API bind host")
    api_port: int = Field(8000, description="API bind port")
    api_key: str = Field(
        "", description="When set, every route except health and the pages needs 'Authorization: Bearer <key>'"
    )
    ingest_api_key: str = Field(
        "", description="When set, POST /ingest also accepts this key (it opens nothing else): for log senders"
    )
    allow_unauthenticated: bool = Field(
        False, description="Let `serve` listen beyond loopback without API_KEY (only behind a gateway of your own)"
    )
    allowed_hosts: str = Field(
        "", description="Host header values answered, ',' separated ('*' = any); empty = loopback names and API_HOST"
    )
    max_range_days: int = Field(400, ge=1, description="Longest date range the API accepts")
    stats_cache_s: float = Field(60.0, ge=0, description="Seconds a stats answer for fully past days is cached")
    fleet_replica_max_entries: int = Field(
        20_000_000,
        ge=0,
        description="Histogram entries the API keeps decoded in memory for the fleet view (GET /stats by "
        "median or p99, or of over 200 rows; ~10 MB per million; 0 = off: such answers read InfluxDB, and "
        "so do the fleet's per-customer sums, otherwise kept per window until a write marks it)",
    )
    api_workers: int = Field(
        1, ge=1, le=64, description="Processes of 'logpulse serve' on one port (each has its own cache and /metrics)"
    )
    api_concurrency: int = Field(
        4, ge=0, description="Data answers computed at once per API process; more wait in arrival order (0 = no limit)"
    )

    # Log formats (checked by logpulse.formats.registry when a command starts)
    log_format: Literal["logpulse", "nginx", "apache", "json"] = Field(
        "logpulse", description="Line format of the logs: logpulse, nginx, apache or json"
    )
    nginx_log_format: str = Field(
        "combined $request_time",
        description="nginx log_format string (or the whole `log_format name [escape=..] '...';` directive)",
    )
    nginx_custom_variables: str = Field(
        "", description="Variables of your own (map, set) used in NGINX_LOG_FORMAT, separated by ','"
    )
    apache_log_format: str = Field(
        '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D', description="Apache LogFormat string"
    )
    json_fields: str = Field(
        "time=time,customer=customer,path=path,status=status,duration=duration",
        description="JSON lines: role=key pairs (dotted keys for nesting)",
    )
    duration_from: str = Field(
        "", description="Field holding the duration (empty: $request_time, %D/%{us}T/%{ms}T/%T, JSON duration)"
    )
    duration_unit: Literal["s", "ms", "us"] = Field("s", description="Unit of the JSON duration field")
    customer_from: str = Field(
        "", description="Field holding the customer (empty: $remote_user, %u, JSON customer key)"
    )
    customer_pattern: str = Field(
        "", description="Regex with a named group `customer` applied to the CUSTOMER_FROM field"
    )
    customer_hash_key: str = Field(
        "", description="When set, stored customer ids are HMAC-SHA256(key, id) as 16 hex characters"
    )
    keep_query_string: bool = Field(False, description="Keep `?query` in stored paths")
    ingest_spool_path: str = Field(
        "data/ingest_spool.log", description="File POST /ingest appends to; tailed with LOG_PATH (empty = off)"
    )
    ingest_max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest POST /ingest body (413 above)")
    ingest_max_lines: int = Field(100_000, ge=1, description="Most lines in one POST /ingest body (413 above)")
    ingest_spool_max_bytes: int = Field(
        1 << 30, ge=0, description="POST /ingest answers 507 while the spool file is this large (0 = no bound)"
    )

    # Rollups, raw points, retention, write compression
    store_raw: bool = Field(True, description="Write one `requests` point per request (false: rollups only)")
    raw_retention: str = Field(
        "INF", pattern=_RETENTION, description="How long raw points are kept (`30d`, `12h`, `INF` = keep)"
    )
    rollup_retention: str = Field(
        "INF", pattern=_RETENTION, description="How long rollup points are kept (`400d`, `INF` = keep)"
    )
    rollup_segment_bytes: int = Field(
        32 << 20,
        ge=4096,
        description="Log bytes per 15m rollup identity (1h: 4x, 1d: 32x); bounds rollup state. Keep it fixed: "
        "files re-ingested with another value are counted twice",
    )
    rollup_flush_s: float = Field(1.0, gt=0, description="Seconds between rewrites of a growing rollup window")
    rollup_idle_close_s: float = Field(
        3600.0, gt=0, description="A file's rollup state is dropped after this long without new lines"
    )
    compaction_lateness_s: float = Field(
        172800.0,
        gt=0,
        description="`logpulse compact` merges a rollup window's points once its end is this many seconds "
        "past: later lines for it still count, but a line landing in a file segment already compacted is "
        "not counted (see docs/operations.md)",
    )
    compaction_open_min_sealed: int = Field(
        8,
        ge=0,
        description="`logpulse compact` also merges, in a rollup window still open, the points of file segments "
        "read to their end (sealed) once the window holds at least this many not yet merged; 0: closed "
        "windows only (see docs/operations.md)",
    )
    influxdb_gzip: bool = Field(
        False, description="Gzip write requests (level 1) and query answers; off is faster on loopback"
    )

    log_level: str = Field("INFO", description="Log level of logpulse's own logs")

    # Value checks: a ValueError here becomes `NAME=value (from <source>): message`.
    @field_validator("influxdb_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s:]+(:\d{1,5})?(/\S*)?", value.strip()):
            raise ValueError("expected an http:// or https:// URL such as http://127.0.0.1:8086")
        return value.strip()

    @field_validator("api_port", "metrics_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("expected a TCP port number, 0-65535")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        if value.strip().upper() not in levels:
            raise ValueError("expected one of " + ", ".join(levels))
        return value.strip().upper()

    def log_globs(self) -> list[str]:
        """The configured path patterns, split on commas, plus the ingest spool file when no pattern
        covers it already (so that lines accepted by `POST /ingest` are always processed)."""
        globs = [p.strip() for p in self.log_path.split(",") if p.strip()]
        spool = self.ingest_spool_path.strip()
        if spool and not any(fnmatch.fnmatch(os.path.normpath(spool), os.path.normpath(g)) for g in globs):
            globs.append(spool)
        return globs

    @field_validator("slo_targets")
    @classmethod
    def _valid_slo_targets(cls, v: str) -> str:
        parse_slo_targets(v)  # raises a ValueError naming the bad entry
        return v

    def log_excludes(self) -> list[str]:
        """The LOG_EXCLUDE globs, split on commas."""
        return [p.strip() for p in self.log_exclude.split(",") if p.strip()]


def parse_slo_targets(text: str) -> dict[str, float]:
    """`default=99.5,cust_7=99.9` (availability in percent) → {"default": 0.995, "cust_7": 0.999}."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            pct = float(value)
        except ValueError:
            pct = -1.0
        if not sep or not name.strip() or not 0 < pct < 100:
            raise ValueError(
                f"SLO_TARGETS: {part!r} is not 'customer=percent' with 0 < percent < 100 (e.g. default=99.5)"
            )
        out[name.strip()] = pct / 100.0
    return out


def slo_target_of(targets: tuple[tuple[str, float], ...], customer: str) -> float | None:
    """The customer's target from parsed `SLO_TARGETS` pairs: its own entry, else `default`, else None.

    One rule for the scorer (`slo_burn`) and the API (`error_budget_remaining`), so both agree."""
    table = dict(targets)
    return table.get(customer, table.get("default"))


# --- Settings errors: one line a user can act on ------------------------------------------------------
# To validate more: a pydantic `field_validator` raising ValueError("what is wrong") is reported as
# `NAME=value (from <source>): what is wrong`; checks that need several fields go into CHECKS as a
# function raising `bad_setting(...)`.


class SettingsError(ValueError):
    """A setting is missing, unknown or invalid. The message is one line per problem and names the
    variable and where its value came from, so the CLI prints it without a traceback."""


def setting_source(name: str, env_file: str | None = None) -> str:
    """Where the value of setting `name` comes from: 'environment', '<env file>, line N' or 'default'."""
    upper = name.upper()
    if any(k.upper() == upper for k in os.environ):
        return "environment"
    path = Path(env_file if env_file is not None else env_file_path())
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return "default"
    pattern = re.compile(rf"^\s*(?:export\s+)?{re.escape(upper)}\s*=", re.IGNORECASE)
    for number, line in enumerate(lines, 1):
        if pattern.match(line):
            return f"{path}, line {number}"
    return "default"


def bad_setting(name: str, value: object, problem: str, env_file: str | None = None) -> SettingsError:
    """The error for one invalid value: `NAME=value (from <source>): problem`."""
    return SettingsError(f"{name.upper()}={value!s} (from {setting_source(name, env_file)}): {problem}")


def _unknown_keys(env_file: str) -> list[str]:
    """Keys of the env file that are no setting, each with the closest valid name."""
    path = Path(env_file)
    if not path.is_file():
        return []
    names = [n.upper() for n in Settings.model_fields]
    problems = []
    for key in dotenv_values(path):
        if key.upper() in names:
            continue
        close = difflib.get_close_matches(key.upper(), names, n=1, cutoff=0.6)
        hint = (
            f"; did you mean {close[0]}?"
            if close
            else f"; the settings are listed in {path}'s comments and docs/configuration.md"
        )
        problems.append(f"unknown setting {key} in {setting_source(key, env_file)}{hint}")
    return problems


CHECKS: list[Callable[[Settings], None]] = []
"""Checks across fields, run by `load_settings` after parsing; each raises `bad_setting(...)`."""


def load_settings() -> Settings:
    """Read and validate the settings; raises SettingsError with every problem, one per line."""
    env_file = env_file_path()
    problems = _unknown_keys(env_file)
    try:
        settings = Settings(_env_file=env_file)
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            value = err.get("input", "")
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(str(bad_setting(name, value, message, env_file)))
        raise SettingsError("\n".join(problems)) from None
    if problems:
        raise SettingsError("\n".join(problems))
    for check in CHECKS:
        check(settings)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read and validated once); raises SettingsError."""
    return load_settings()
