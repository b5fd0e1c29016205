"""The dashboard in a real headless Chromium, with real data behind the API."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures import running_api, subprocess_env, write_requests

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
    "--window-size=1400,1100",
]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (run_tests.sh installs Debian's chromium as root)")
def test_dashboard_renders_charts_and_incidents(influx_settings, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(7):
        day = today - dt.timedelta(days=d)
        write_requests(
            influx_settings,
            "cust_1",
            [
                (day + dt.timedelta(minutes=7 * i), 500 if i % (d + 3) == 0 else 200, 0.1 + (i % 17) / 10)
                for i in range(150)
            ],
        )
    import httpx

    from logpulse.model import Incident
    from logpulse.storage.points import incident_line

    start = today - dt.timedelta(days=2, hours=-10)
    inc = Incident(
        "cust_1", "latency", int(start.timestamp()) * 10**9, int(start.timestamp() + 3600) * 10**9, 12.5, 400
    )
    httpx.post(
        f"{influx_settings.influxdb_url}/write",
        params={"db": influx_settings.influxdb_database},
        content=incident_line(inc),
    ).raise_for_status()

    with running_api(subprocess_env(influx_settings)) as api:
        url = str(api.base_url).rstrip("/") + "/dashboard?customer=cust_1"
        dom = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        shot = tmp_path / "dashboard.png"
        subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}", f"--screenshot={shot}", url],
            capture_output=True,
            timeout=120,
        )
    assert 'data-rendered="true"' in dom, dom[-2000:]
    assert dom.count('class="main-svg"') >= 6  # three plotly charts (two svg layers each)
    for title in ("Requests per day", "Uptime", "Latency"):
        assert title in dom
    assert "successful" in dom and "failed" in dom and "p99" in dom
    assert "<td>latency</td>" in dom  # the incident in the table
    assert shot.exists() and shot.stat().st_size > 10_000  # docs/dashboard.png is a copy of one such shot
