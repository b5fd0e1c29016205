"""The format commands as users run them: generate --format, check-format, customer-id, start checks."""

from __future__ import annotations

import hashlib
import hmac
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logpulse import config
from logpulse.cli import app, main
from logpulse.config import SettingsError
from logpulse.formats.registry import FormatOptions, build_parser
from logpulse.generator import FORMATS
from logpulse.model import Chunk

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPULSE_ENV_FILE", "/nonexistent")
    config.get_settings.cache_clear()


@pytest.mark.parametrize("fmt", FORMATS)
def test_generated_lines_parse_with_the_default_settings_of_their_format(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"{fmt}.log"
    result = runner.invoke(
        app, ["generate", "--out", str(out), "--format", fmt, "--count", "500", "--rate", "0", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    parsed = build_parser(FormatOptions(log_format=fmt)).parse_chunk(Chunk(str(out), 1, 0, out.read_bytes()))
    assert parsed.lines == 500 and not parsed.rejects
    assert sum(len(b) for b in parsed.batches.values()) == 500


def test_the_same_seed_gives_the_same_requests_in_every_format(tmp_path: Path) -> None:
    stored = {}
    for fmt in FORMATS:
        out = tmp_path / f"{fmt}.log"
        runner.invoke(
            app,
            [
                "generate",
                "--out",
                str(out),
                "--format",
                fmt,
                "--count",
                "200",
                "--rate",
                "0",
                "--seed",
                "5",
                "--days",
                "0.5",
                "--end",
                "2026-10-25T03:00:00",
            ],
        )
        parsed = build_parser(FormatOptions(log_format=fmt)).parse_chunk(Chunk(str(out), 1, 0, out.read_bytes()))
        stored[fmt] = sorted(
            (c, t // 10**9, p, s, round(float(d), 3))  # to the second, as every format writes times
            for c, b in parsed.batches.items()
            for t, p, s, d in zip(b.times, b.paths, b.statuses, b.durations, strict=True)
        )
    assert stored["nginx"] == stored["logpulse"] == stored["json"]
    assert [r[:4] for r in stored["apache"]] == [r[:4] for r in stored["logpulse"]]


def test_check_format_shows_fields_and_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '::1 - acme [10/Oct/2026:13:55:36 +0200] "GET /a?t=1 HTTP/1.1" 200 5 "-" "curl" 0.532\n'
        '::1 - - [10/Oct/2026:13:55:36 +0200] "GET /a HTTP/1.1" 200 5 "-" "curl" 0.532\n'
    )
    monkeypatch.setenv("LOG_FORMAT", "nginx")
    result = runner.invoke(app, ["check-format", str(log)])
    assert result.exit_code == 1  # one line rejected
    assert "remote_user              acme" in result.output
    assert "-> time 2026-10-10T11:55:36Z  customer acme  path /a  status 200  duration 0.532 s" in result.output
    assert "REJECTED: no customer: $remote_user is '-'" in result.output


def test_a_bad_format_setting_stops_every_command_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "nginx")
    monkeypatch.setenv("NGINX_LOG_FORMAT", "$remote_user [$time_local] $status $reqeust_time")
    for args in (["check-format", "/nonexistent"], ["ingest", "/nonexistent"], ["serve"], ["process"]):
        result = runner.invoke(app, args)
        assert isinstance(result.exception, SettingsError), (args, result.output)
        assert str(result.exception) == (
            "NGINX_LOG_FORMAT: unknown variable $reqeust_time; did you mean $request_time? (variables of your own, "
            "from map or set: list them in NGINX_CUSTOM_VARIABLES) (NGINX_LOG_FORMAT: environment)"
        )
    # as the console script prints it: one line, exit status 2, no traceback
    config.get_settings.cache_clear()
    monkeypatch.setattr(sys, "argv", ["logpulse", "check-format", "/nonexistent"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: NGINX_LOG_FORMAT: unknown variable $reqeust_time"), err


def test_customer_from_missing_in_the_format_names_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env.local"
    env_file.write_text("LOG_FORMAT=nginx\nCUSTOMER_FROM=$http_x_tenant\n")
    monkeypatch.setenv("LOGPULSE_ENV_FILE", str(env_file))
    config.get_settings.cache_clear()
    result = runner.invoke(app, ["check-format", "/nonexistent"])
    assert str(result.exception).startswith("CUSTOMER_FROM=$http_x_tenant is not in NGINX_LOG_FORMAT")
    assert str(result.exception).endswith(f"(CUSTOMER_FROM: {env_file}, line 2)")


def test_customer_id_prints_the_stored_id(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["customer-id", "jane@example.com"]).output.strip() == "jane@example.com"
    monkeypatch.setenv("CUSTOMER_HASH_KEY", "s3cret")
    config.get_settings.cache_clear()
    want = hmac.new(b"s3cret", b"jane@example.com", hashlib.sha256).hexdigest()[:16]
    assert runner.invoke(app, ["customer-id", "jane@example.com"]).output.strip() == want
