"""The `logpulse` command. Each command's work lives in the module it names (docs/architecture.md maps them)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from dotenv import dotenv_values

from logpulse import __version__
from logpulse.config import SettingsError, env_file_path, get_settings, setting_source

if TYPE_CHECKING:
    from logpulse.formats.registry import LineParser

HELP = (
    "Per-customer service-level numbers and incidents from API access logs.\n\n"
    "Typical use: `generate` (or bring your own logs), then `process` (tail continuously) or `ingest` "
    "(read files once) into InfluxDB, then `serve` (API and dashboard). `./start.sh` runs all of it as a demo.\n\n"
    "Settings come from the environment and .env.local (see docs/configuration.md)."
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logpulse {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """Per-customer service-level numbers and incidents from API access logs."""


def _debug() -> bool:
    """LOG_LEVEL=DEBUG (environment or env file), read raw: the settings themselves may be what failed."""
    level = os.environ.get("LOG_LEVEL") or dotenv_values(env_file_path()).get("LOG_LEVEL") or ""
    return level.strip().upper() == "DEBUG"


def main() -> None:
    """The console script: errors a user can act on are one line on stderr, not a traceback
    (unless LOG_LEVEL=DEBUG)."""
    from logpulse.storage.influx import InfluxError
    from logpulse.storage.influxd import InfluxdError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except (SettingsError, InfluxError, InfluxdError) as exc:
        if _debug():
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, SettingsError) else 1)


def _setup_logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "httpcore"):  # one line per HTTP request is noise, not events
        logging.getLogger(chatty).setLevel(logging.WARNING)


# -- log formats -------------------------------------------------------------------------------------
def _check_format() -> LineParser:
    """Build the configured parser before starting anything: a format setting that cannot work is a
    SettingsError (one line naming the variable and where its value came from; `main` prints it)."""
    from logpulse.formats.registry import FormatError, build_parser

    try:
        return build_parser(get_settings())
    except FormatError as exc:
        raise SettingsError(f"{exc} ({exc.setting}: {setting_source(exc.setting)})") from None


@app.command("check-format")
def check_format(
    path: Annotated[Path, typer.Argument(help="Log file to try the configured LOG_FORMAT on")],
    lines: Annotated[int, typer.Option(help="How many lines from the start of the file")] = 5,
) -> None:
    """Parse the first lines of PATH with the configured format and show each field, or why not."""
    from logpulse.formats.lines import decode_line
    from logpulse.formats.record import LineRecord

    settings = get_settings()
    parser = _check_format()
    typer.echo(f"LOG_FORMAT={settings.log_format}")
    bad = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if number > lines:
                break
            text, not_utf8 = decode_line(raw.rstrip(b"\n"))
            record = parser.parse_line(text) if not_utf8 is None else LineRecord({}, None, not_utf8)
            typer.echo(f"\nline {number}: {text[:200]}")
            for name, value in record.fields.items():
                typer.echo(f"  {name:<24} {value}")
            if record.stored is None:
                bad += 1
                typer.echo(f"  REJECTED: {record.reason}")
            else:
                st = record.stored
                typer.echo(
                    f"  -> time {st.time}  customer {st.customer_id}  path {st.path}  status {st.status}  "
                    f"duration {st.duration_s} s"
                )
    raise typer.Exit(1 if bad else 0)


@app.command("customer-id")
def customer_id(customer: Annotated[str, typer.Argument(help="A customer as it appears in the logs")]) -> None:
    """Print the id stored for CUSTOMER (its HMAC under CUSTOMER_HASH_KEY, else itself)."""
    from logpulse.formats.registry import customer_id as stored

    typer.echo(stored(customer, get_settings().customer_hash_key))


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Log file to append to")],
    count: Annotated[int | None, typer.Option(help="Lines to write (default: endless when --rate > 0)")] = None,
    rate: Annotated[float, typer.Option(help="Lines per second; 0 = as fast as possible")] = 100.0,
    customers: Annotated[int, typer.Option(help="Number of customers")] = 50,
    days: Annotated[
        float | None, typer.Option(help="Days of history: live backfill (default 1) / classic range (default 30)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for reproducible output")] = None,
    mode: Annotated[
        str, typer.Option(help="live (time-ordered, ending now) | classic (random times over --days)")
    ] = "live",
    incidents: Annotated[int, typer.Option(help="Latency spikes / error bursts to inject (live mode)")] = 0,
    format: Annotated[str, typer.Option("--format", help="logpulse | nginx | apache | json")] = "logpulse",
    resume: Annotated[
        bool, typer.Option(help="If OUT has lines: continue after its last line's time instead of a new backfill")
    ] = False,
    max_backfill_lines: Annotated[
        int, typer.Option(help="Thin the history to at most this many lines (0 = never thin: same rate as live)")
    ] = 200_000,
    end: Annotated[
        dt.datetime | None,
        typer.Option(
            help="Where the history ends (UTC unless the time says otherwise; default: now): "
            "the same seed and end give the same lines on any day",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
) -> None:
    """Append synthetic API access-log lines to OUT."""
    from logpulse.generator import GeneratorOptions
    from logpulse.generator import generate as run_generator

    _setup_logging()
    written = run_generator(
        GeneratorOptions(
            out=out,
            count=count,
            rate=rate,
            customers=customers,
            days=days,
            seed=seed,
            mode=mode,
            incidents=incidents,
            format=format,
            resume=resume,
            backfill_max_lines=max_backfill_lines or None,
            now=None if end is None else end if end.tzinfo else end.replace(tzinfo=dt.UTC),
        )
    )
    typer.echo(f"wrote {written} lines to {out}", err=True)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Log files to read from start to end")],
    workers: Annotated[int | None, typer.Option(help="Bytewax workers (default: WORKERS)")] = None,
    processes: Annotated[int | None, typer.Option(help="Bytewax processes (default: PROCESSES)")] = None,
    addresses: Annotated[str | None, typer.Option("--addresses", "-a", hidden=True)] = None,
    process_id: Annotated[int | None, typer.Option("--process-id", "-i", hidden=True)] = None,
) -> None:
    """Read log files once, start to end, into InfluxDB.

    Exits 0 once every line is stored; non-zero if writing failed or a file yielded no valid line.
    """
    from logpulse.flow.runner import ingest as run_ingest

    _setup_logging()
    _check_format()
    summary = run_ingest(
        [str(p) for p in paths],
        get_settings(),
        workers=workers,
        processes=processes,
        addresses=addresses,
        process_id=process_id,
    )
    if addresses is None:  # cluster members stay quiet; the parent prints the summary
        typer.echo(summary.line())
    raise typer.Exit(0 if summary.ok else 1)


def _utc_ns(text: str, option: str) -> int:
    """An ISO 8601 time with its UTC offset (`Z` or `+hh:mm`) as UTC ns; a clear error otherwise."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=option) from exc
    if t.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no UTC offset: add Z or +hh:mm", param_hint=option)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


@app.command()
def compact(
    every: Annotated[float, typer.Option(help="Seconds between passes; 0 = one pass and exit", min=0)] = 0.0,
    now: Annotated[
        str | None,
        typer.Option(
            help="Compact as if it were this UTC time (ISO 8601, e.g. 2026-10-21T12:00:00Z); default: the clock"
        ),
    ] = None,
) -> None:
    """Merge the points of closed rollup windows (COMPACTION_LATENESS_S past their end) into one per
    customer-window and level, and in open windows those of file segments read to their end
    (COMPACTION_OPEN_MIN_SEALED), then delete the points merged. Safe to kill at any moment; one at a time."""
    from logpulse.rollups.compactor import CompactionLocked, single_compactor
    from logpulse.rollups.compactor import compact as run_compact
    from logpulse.storage.influx import Connection, InfluxError, InfluxWriter

    now_ns = None if now is None else _utc_ns(now, "--now")
    if now_ns is not None and now_ns > time.time_ns():  # would close (and merge) windows still open
        raise typer.BadParameter(f"{now!r} is in the future", param_hint="--now")
    _setup_logging()
    settings = get_settings()
    writer = InfluxWriter(Connection.from_settings(settings))
    try:
        with single_compactor(settings.recovery_dir):
            while True:
                summary = run_compact(
                    writer, settings.compaction_lateness_s, now_ns, settings.compaction_open_min_sealed
                )
                typer.echo(summary.line())
                if every <= 0:
                    break
                time.sleep(every)
    except CompactionLocked as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except InfluxError as exc:
        typer.echo(f"compaction stopped: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        writer.close()


@app.command()
def process(
    workers: Annotated[int | None, typer.Option(help="Bytewax worker threads per process (default: WORKERS)")] = None,
    processes: Annotated[int | None, typer.Option(help="Bytewax processes on this host (default: PROCESSES)")] = None,
    addresses: Annotated[
        str | None, typer.Option("--addresses", "-a", help="Multi-host: 'host:port;host:port;...' of every process")
    ] = None,
    process_id: Annotated[
        int | None, typer.Option("--process-id", "-i", help="Multi-host: this process's index in -a")
    ] = None,
) -> None:
    """Tail LOG_PATH continuously into InfluxDB, resuming where it stopped; Ctrl-C stops it cleanly."""
    from logpulse.flow.supervise import stop_gracefully_on_signals

    stop_gracefully_on_signals()  # before the slow imports: a signal during start-up is a clean stop too
    from logpulse.flow.runner import process as run_process

    _setup_logging()
    _check_format()
    raise typer.Exit(
        run_process(get_settings(), workers=workers, processes=processes, addresses=addresses, process_id=process_id)
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind host (default: API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port (default: API_PORT)")] = None,
) -> None:
    """Run the HTTP API and dashboard."""
    import uvicorn

    from logpulse.api.security import serving_problem

    s = get_settings()
    bind = host or s.api_host
    problem = serving_problem(s, bind)
    if problem:
        raise SettingsError(problem)
    _setup_logging()
    _check_format()
    uvicorn.run(
        "logpulse.api.app:create_app",
        factory=True,
        host=bind,
        port=port or s.api_port,
        log_level=s.log_level.lower(),
        access_log=False,
        workers=s.api_workers,  # >1: uvicorn's supervisor starts that many processes on one socket
        timeout_graceful_shutdown=math.ceil(s.stop_grace_s),  # an answer hung on InfluxDB holds no stop
    )


@app.command()
def influxd(
    data_dir: Annotated[Path, typer.Option(help="Private data directory")] = Path(".logpulse/influxdb"),
    port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1 (0 = a free one)")] = 8086,
) -> None:
    """Run a private InfluxDB (Debian's influxd) on 127.0.0.1 until Ctrl-C, for demos and tests."""
    from logpulse.storage.influxd import run_foreground

    _setup_logging()
    raise typer.Exit(run_foreground(data_dir, port))


if __name__ == "__main__":  # pragma: no cover
    main()
