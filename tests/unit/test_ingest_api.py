"""POST /ingest in-process (no InfluxDB): answers, line numbers, spool contents, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from logpulse.api.app import create_app
from logpulse.api.spool import Spool
from logpulse.config import Settings

NGINX_LINE = '10.0.0.{i} - cust_{i} [01/Jan/2026:00:00:0{i} +0100] "GET /a/{i}?q=1 HTTP/1.1" 200 1 "-" "ua" 0.00{i}'


def make_client(tmp_path: Path, **extra: object) -> TestClient:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_key="k",
        influxdb_url="http://127.0.0.1:9",  # nothing here may reach an InfluxDB
        stats_cache_s=0,
        **(  # type: ignore[arg-type]
            {"ingest_spool_path": str(tmp_path / "spool" / "ingest.log"), "ingest_max_body_bytes": 2000} | extra
        ),
    )
    return TestClient(create_app(settings), base_url="http://localhost", headers={"Authorization": "Bearer k"})


@pytest.fixture()
def nginx(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, log_format="nginx") as client:
        yield client


def test_accepted_lines_are_spooled_as_sent_and_rejects_numbered(nginx: TestClient, tmp_path: Path) -> None:
    good = [NGINX_LINE.format(i=i) for i in range(1, 4)]
    no_customer = good[0].replace("cust_1", "-")
    body = "\n".join([good[0], "garbage", good[1], no_customer, good[2]])  # no final newline
    r = nginx.post("/ingest", content=body, headers={"Content-Type": "text/plain; charset=utf-8"})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["accepted"] == 3 and answer["rejected"] == 2
    assert [x["line"] for x in answer["rejections"]] == [2, 4]
    assert answer["rejections"][0]["reason"].startswith("does not match NGINX_LOG_FORMAT")
    assert answer["rejections"][1]["reason"].startswith("no customer")
    spool = tmp_path / "spool" / "ingest.log"
    assert spool.read_text() == "\n".join(good) + "\n"
    r = nginx.post("/ingest", content=good[0] + "\r\n", headers={"Content-Type": "text/plain"})
    assert r.json() == {"accepted": 1, "rejected": 0, "rejections": []}
    assert spool.read_bytes().endswith((good[0] + "\r\n").encode())


@pytest.mark.parametrize(
    "body, headers, status, words",
    [
        ("x" * 2001, {"Content-Type": "text/plain"}, 413, "INGEST_MAX_BODY_BYTES=2000"),
        ("a line", {"Content-Type": "application/json"}, 415, "send text/plain"),
        ("a line", {}, 415, "send text/plain"),
        ("", {"Content-Type": "text/plain"}, 400, "empty body"),
        ("\n\n", {"Content-Type": "text/plain"}, 400, "empty body"),
        ("a line", {"Content-Type": "text/plain", "Authorization": "Bearer wrong"}, 401, "API key"),
    ],
)
def test_errors(nginx: TestClient, tmp_path: Path, body: str, headers: dict[str, str], status: int, words: str) -> None:
    r = nginx.post("/ingest", content=body, headers=headers)
    assert r.status_code == status and words in r.json()["detail"], r.text
    assert not (tmp_path / "spool" / "ingest.log").exists() or not (tmp_path / "spool" / "ingest.log").read_bytes()


def test_chunked_body_over_the_limit_is_413(nginx: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"y" * 100

    r = nginx.post("/ingest", content=chunks(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413


def test_ndjson_for_the_json_format(tmp_path: Path) -> None:
    lines = [
        json.dumps({"time": "2026-01-01T00:00:00Z", "customer": "c", "path": "/", "status": 200, "duration": 0.1}),
        json.dumps({"time": "2026-01-01T00:00:00Z", "path": "/", "status": 200, "duration": 0.1}),
    ]
    with make_client(tmp_path, log_format="json") as client:
        r = client.post("/ingest", content="\n".join(lines), headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202
    assert r.json()["rejections"] == [{"line": 2, "reason": "no customer: customer is missing"}]


def test_spool_closes_a_torn_last_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "spool.log"
    path.write_bytes(b"complete line\npartial li")  # a writer killed mid-line
    spool = Spool(path)
    spool.append(b"next request\n")
    assert path.read_bytes() == b"complete line\npartial li\nnext request\n"


def test_spool_follows_a_rename_rotation(tmp_path: Path) -> None:
    path = tmp_path / "spool.log"
    spool = Spool(path)
    spool.append(b"one\n")
    path.rename(tmp_path / "spool.log.1")
    spool.append(b"two\n")
    assert (tmp_path / "spool.log.1").read_bytes() == b"one\n" and path.read_bytes() == b"two\n"


def test_the_processor_tails_the_spool_too(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, log_path="logs/*.log", ingest_spool_path="data/ingest_spool.log")  # type: ignore[call-arg]
    assert settings.log_globs() == ["logs/*.log", "data/ingest_spool.log"]
    covered = Settings(_env_file=None, log_path="data/*.log", ingest_spool_path="data/ingest_spool.log")  # type: ignore[call-arg]
    assert covered.log_globs() == ["data/*.log"]
    off = Settings(_env_file=None, ingest_spool_path="")  # type: ignore[call-arg]
    assert off.log_globs() == [off.log_path]


def test_the_answer_lists_the_first_100_rejections_and_counts_all(tmp_path: Path) -> None:
    """20,000 bad lines among good ones: every one counted, 100 listed with their true line numbers,
    only the good lines spooled."""
    good = NGINX_LINE.format(i=1)
    lines = [good if n % 100 == 0 else "x" for n in range(20_000)]
    with make_client(tmp_path, log_format="nginx", ingest_max_body_bytes=1 << 20) as client:
        r = client.post("/ingest", content="\n".join(lines), headers={"Content-Type": "text/plain"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (200, 19_800)
    want = [n + 1 for n in range(20_000) if n % 100][:100]
    assert [x["line"] for x in body["rejections"]] == want
    assert len(r.content) < 20_000
    spooled = (tmp_path / "spool" / "ingest.log").read_text().splitlines()
    assert spooled == [good] * 200


def test_more_lines_than_ingest_max_lines_is_413_and_spools_nothing(tmp_path: Path) -> None:
    with make_client(tmp_path, log_format="nginx", ingest_max_lines=3) as client:
        r = client.post(
            "/ingest", content="\n".join([NGINX_LINE.format(i=1)] * 4), headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 413 and "INGEST_MAX_LINES=3" in r.json()["detail"]
        ok = client.post(
            "/ingest", content="\n".join([NGINX_LINE.format(i=1)] * 3), headers={"Content-Type": "text/plain"}
        )
        assert ok.status_code == 202
    assert len((tmp_path / "spool" / "ingest.log").read_text().splitlines()) == 3


def test_a_full_spool_is_507_with_retry_after(tmp_path: Path) -> None:
    line = NGINX_LINE.format(i=1) + "\n"
    with make_client(tmp_path, log_format="nginx", ingest_spool_max_bytes=len(line) * 2) as client:
        for _ in range(2):
            assert client.post("/ingest", content=line, headers={"Content-Type": "text/plain"}).status_code == 202
        r = client.post("/ingest", content=line, headers={"Content-Type": "text/plain"})
    assert r.status_code == 507 and r.headers["Retry-After"].isdigit(), r.text
    assert "INGEST_SPOOL_MAX_BYTES" in r.json()["detail"]
    assert (tmp_path / "spool" / "ingest.log").read_text() == line * 2


def test_spool_file_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "new" / "spool.log")
    spool.append(b"a line\n")
    spool.close()
    assert (tmp_path / "new" / "spool.log").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700


def test_ingest_api_key_opens_ingest_only(tmp_path: Path) -> None:
    with make_client(tmp_path, log_format="nginx", ingest_api_key="sender") as client:
        sender = {"Authorization": "Bearer sender", "Content-Type": "text/plain"}
        assert client.post("/ingest", content=NGINX_LINE.format(i=1), headers=sender).status_code == 202
        assert client.get("/customers", headers=sender).status_code == 401
        assert client.get("/metrics", headers=sender).status_code == 401
        reader = {"Authorization": "Bearer k", "Content-Type": "text/plain"}
        assert client.post("/ingest", content=NGINX_LINE.format(i=2), headers=reader).status_code == 202
        nobody = {"Authorization": "Bearer wrong", "Content-Type": "text/plain"}
        assert client.post("/ingest", content=NGINX_LINE.format(i=3), headers=nobody).status_code == 401


def test_ingest_off_is_404_after_the_key_check_and_creates_no_spool(tmp_path: Path) -> None:
    with make_client(tmp_path, log_format="nginx", ingest_spool_path="") as client:
        line = {"Content-Type": "text/plain"}
        off = client.post("/ingest", content=NGINX_LINE.format(i=1), headers=line)
        assert off.status_code == 404
        assert "POST /ingest is off: INGEST_SPOOL_PATH is empty" in off.text
        stranger = client.post("/ingest", content="x", headers=line | {"Authorization": "Bearer wrong"})
        assert stranger.status_code == 401
    assert not (tmp_path / "spool").exists()
