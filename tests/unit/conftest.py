"""Unit tests start no processes and reach no InfluxDB: a test that tries is pointed to tests/integration/."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a unit test starts no process: this test belongs in tests/integration/")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
