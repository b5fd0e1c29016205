"""api/security.py in-process: Host check, Origin check, page headers, the serving rule, and the
receiver URLs in delivery errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from logpulse.alerts.alertmanager import DeliveryError, post_json, redacted
from logpulse.api.app import create_app
from logpulse.api.security import allowed_hosts, serving_problem
from logpulse.config import Settings


def settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        influxdb_url="http://127.0.0.1:9",
        stats_cache_s=0,
        ingest_spool_path=str(tmp_path / "spool.log"),
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "localhost"])
def test_loopback_names_are_answered(tmp_path: Path, host: str) -> None:
    with TestClient(create_app(settings(tmp_path))) as client:
        assert client.get("/healthz", headers={"Host": host}).status_code != 400


@pytest.mark.parametrize("host", ["attacker.example:8000", "evil.test", "127.0.0.1.nip.io"])
def test_a_rebound_name_is_refused(tmp_path: Path, host: str) -> None:
    """DNS rebinding: a page of the attacker's name reaching 127.0.0.1 sends its own name as Host."""
    with TestClient(create_app(settings(tmp_path))) as client:
        r = client.get("/dashboard", headers={"Host": host})
    assert r.status_code == 400


def test_allowed_hosts_setting(tmp_path: Path) -> None:
    assert allowed_hosts(settings(tmp_path, api_host="10.1.2.3")) == ["localhost", "127.0.0.1", "[::1]", "10.1.2.3"]
    assert allowed_hosts(settings(tmp_path, api_host="0.0.0.0")) == ["localhost", "127.0.0.1", "[::1]"]
    assert allowed_hosts(settings(tmp_path, allowed_hosts="logs.example.com, *.corp")) == ["logs.example.com", "*.corp"]
    assert allowed_hosts(settings(tmp_path, allowed_hosts="*")) == ["*"]
    with TestClient(create_app(settings(tmp_path, allowed_hosts="logs.example.com"))) as client:
        assert client.get("/healthz", headers={"Host": "logs.example.com"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "localhost"}).status_code == 400


def test_cross_origin_post_without_a_key_is_403(tmp_path: Path) -> None:
    """A page elsewhere can make a browser POST text/plain without a preflight: its Origin gives it away."""
    line = "2026-12-06 05:06:15 cust_1 /p 200 0.100\n"
    with TestClient(create_app(settings(tmp_path, ingest_api_key="sender")), base_url="http://localhost:8000") as c:
        for origin in ("https://evil.example", "null", "http://localhost:9999"):
            r = c.post("/ingest", content=line, headers={"Origin": origin, "Content-Type": "text/plain"})
            assert r.status_code == 403, (origin, r.text)
        same = c.post(
            "/ingest",
            content=line,
            headers={"Origin": "http://localhost:8000", "Content-Type": "text/plain", "Authorization": "Bearer sender"},
        )
        assert same.status_code == 202, same.text
        keyed = c.post(
            "/ingest",
            content=line,
            headers={"Origin": "https://evil.example", "Content-Type": "text/plain", "Authorization": "Bearer sender"},
        )
        assert keyed.status_code == 202, keyed.text
        assert c.get("/healthz", headers={"Origin": "https://evil.example"}).status_code == 200  # reads: CORS applies
    assert (tmp_path / "spool.log").read_text() == line * 2


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/customers/cust_1", "/docs", "/healthz", "/openapi.json"])
def test_pages_carry_the_security_headers(tmp_path: Path, path: str) -> None:
    with TestClient(create_app(settings(tmp_path)), base_url="http://localhost") as client:
        r = client.get(path)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"]


def test_the_docs_page_allows_exactly_its_own_inline_script(tmp_path: Path) -> None:
    import base64
    import hashlib
    import re

    with TestClient(create_app(settings(tmp_path)), base_url="http://localhost") as client:
        r = client.get("/docs")
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert scripts
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in r.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("host", "extra", "refused"),
    [
        ("127.0.0.1", {}, False),
        ("localhost", {}, False),
        ("::1", {}, False),
        ("0.0.0.0", {}, True),
        ("::", {}, True),
        ("10.0.0.5", {}, True),
        ("0.0.0.0", {"ingest_api_key": "only-ingest"}, True),
        ("0.0.0.0", {"api_key": "k"}, False),
        ("0.0.0.0", {"allow_unauthenticated": True}, False),
    ],
)
def test_serving_beyond_loopback_needs_api_key(tmp_path: Path, host: str, extra: dict, refused: bool) -> None:
    problem = serving_problem(settings(tmp_path, **extra), host)
    assert (problem is not None) == refused
    if problem:
        assert "API_KEY" in problem and "\n" not in problem


def test_delivery_errors_name_receivers_without_credentials() -> None:
    url = "http://alice:hunter2@127.0.0.1:9/hook?token=t0psecret&channel=ops"
    assert redacted(url) == "http://***@127.0.0.1:9/hook?token=***&channel=***"
    with httpx.Client(timeout=2) as client, pytest.raises(DeliveryError) as err:
        post_json(client, url, "webhook", {"a": 1})  # port 9: connection refused
    assert "hunter2" not in str(err.value) and "t0psecret" not in str(err.value) and "alice" not in str(err.value)
    assert "127.0.0.1:9/hook" in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.slack.com/services/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",
            "https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/***",
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/" + "x" * 68,
            "https://discord.com/api/webhooks/***/***",
        ),
        ("http://127.0.0.1:9093/api/v2/alerts", "http://127.0.0.1:9093/api/v2/alerts"),
    ],
)
def test_a_token_in_the_receivers_path_is_not_logged(url: str, shown: str) -> None:
    assert redacted(url) == shown
    secret = url.rsplit("/", 1)[1]
    with httpx.Client(timeout=2) as client, pytest.raises(DeliveryError) as err:
        post_json(client, url.replace(urlsplit(url).netloc, "127.0.0.1:9"), "webhook", {"a": 1})
    assert (secret not in str(err.value)) == (shown.endswith("***"))
