"""A real `logpulse serve` (uvicorn): the refusal to serve beyond loopback without API_KEY, and the
413 that reaches clients sending a 64 MiB body whole before reading (urllib, httpx)."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest

from fixtures import free_port, running_api, subprocess_env
from logpulse.config import Settings

BIG = 64 << 20


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serve_beyond_loopback_without_api_key_refuses_with_one_line(tmp_path: Path, host: str) -> None:
    s = Settings(_env_file=None, influxdb_url="http://127.0.0.1:9", ingest_spool_path=str(tmp_path / "s.log"))  # type: ignore[call-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "logpulse", "serve", "--host", host, "--port", str(free_port())],
        env=subprocess_env(s, API_KEY=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "API_KEY" in lines[0] and host in lines[0], proc.stderr


def test_serve_beyond_loopback_starts_with_a_key_or_the_explicit_setting(tmp_path: Path) -> None:
    s = Settings(_env_file=None, influxdb_url="http://127.0.0.1:9", ingest_spool_path=str(tmp_path / "s.log"))  # type: ignore[call-arg]
    for extra in ({"API_KEY": "k"}, {"ALLOW_UNAUTHENTICATED": "true"}):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "logpulse", "serve", "--host", "0.0.0.0", "--port", str(port)],
            env=subprocess_env(s, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                    subprocess.run(["sleep", "0.1"], check=True)
            else:
                pytest.fail(f"serve with {extra} did not answer")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def ingest_api(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("big")
    s = Settings(_env_file=None, influxdb_url="http://127.0.0.1:9", ingest_spool_path=str(tmp / "spool.log"))  # type: ignore[call-arg]
    with running_api(subprocess_env(s, API_KEY="k")) as client:
        yield str(client.base_url).rstrip("/"), tmp / "spool.log"


@pytest.mark.parametrize("auth", ["Bearer k", None])
def test_urllib_sending_64_mib_gets_the_413_or_401(ingest_api: tuple[str, Path], auth: str | None) -> None:
    """urllib sends `Connection: close` and the whole body before reading: the early answer must not be
    lost to a reset (it was: "Connection reset by peer")."""
    url, spool = ingest_api
    headers = {"Content-Type": "text/plain"} | ({"Authorization": auth} if auth else {})
    request = urllib.request.Request(f"{url}/ingest", data=b"x" * BIG, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=60)
    assert answer.value.code == (413 if auth else 401)
    if auth:
        assert "INGEST_MAX_BODY_BYTES" in answer.value.read().decode()
    assert not spool.exists() or spool.stat().st_size == 0


def test_httpx_sending_64_mib_gets_the_413(ingest_api: tuple[str, Path]) -> None:
    url, _ = ingest_api
    for headers in ({}, {"Connection": "close"}):
        r = httpx.post(
            f"{url}/ingest",
            content=b"x" * BIG,
            headers={"Content-Type": "text/plain", "Authorization": "Bearer k"} | headers,
            timeout=60,
        )
        assert r.status_code == 413, r.text


def test_httpx_streaming_64_mib_chunked_gets_the_413(ingest_api: tuple[str, Path]) -> None:
    """No Content-Length: the limit is found while reading, the rest is read and dropped."""
    url, _ = ingest_api

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(64):
            yield b"x" * (1 << 20)

    r = httpx.post(
        f"{url}/ingest",
        content=chunks(),
        headers={"Content-Type": "text/plain", "Authorization": "Bearer k", "Connection": "close"},
        timeout=60,
    )
    assert r.status_code == 413, r.text
