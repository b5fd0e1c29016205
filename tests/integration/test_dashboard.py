"""The dashboard in a real headless Chromium (Selenium driving Debian's chromium + chromedriver) against a
real `logpulse serve`, a real `logpulse process` tailing a log file, and a private influxd with known data.

Set SCREENSHOTS_DIR=docs/dashboard to refresh the screenshots in docs/dashboard.md from these runs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from fixtures import CHROMEDRIVER, CHROMIUM, ns, p99, requires, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.model import Incident
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd
from logpulse.storage.marks import write_mark_lines
from logpulse.storage.points import MARKS_RP, incident_line

pytestmark = requires(CHROMIUM, CHROMEDRIVER)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1400,1000",
]
SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR")
INCIDENT_SUMMARY = "p50 latency 0.42 s vs 0.12 s usual; 40 requests"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
FROM, TO = (NOW - dt.timedelta(days=1)).date().isoformat(), NOW.date().isoformat()
SLO_TARGETS = "default=90,cust_slo=99.5"  # 90 %: some of the known customers within budget, some over
HISTORY_DAYS = [(NOW - dt.timedelta(days=d)).date() for d in range(22, 2, -1)]  # cust_slo's, before FROM


# ---------- known data and what the page must show for it ----------


INCIDENT_START = NOW - dt.timedelta(hours=6)
INCIDENT_END = INCIDENT_START + dt.timedelta(minutes=50)


KNOWN_INCIDENT = Incident(
    "cust_03",
    "latency",
    ns(INCIDENT_START),
    ns(INCIDENT_END),
    12.5,
    40,
    "resolved",
    ns(INCIDENT_END),
    INCIDENT_SUMMARY,
)


def known_lines() -> list[str]:
    """12 customers over the last 20 hours: different volumes with a daily swing, failure rates and
    latencies; cust_03 is slow and failing during INCIDENT_START..INCIDENT_END."""
    lines = []
    start = NOW - dt.timedelta(hours=20)
    for c in range(12):
        i = 0
        for slot in range(0, 19 * 60, 5):  # every 5 minutes
            for j in range(1 + c % 4 + int(2 * (1 + math.sin(slot / 90 + c)))):
                t = start + dt.timedelta(minutes=slot, seconds=7 * j)
                hurt = c == 3 and INCIDENT_START <= t < INCIDENT_END
                status = 500 if i % (c + 3) == 0 or (hurt and j % 2 == 0) else 404 if i % 17 == 5 else 200
                duration = 0.010 + ((i * 37 + c * 11) % (150 + 31 * c)) / 1000 + (0.9 if hurt else 0.0)
                lines.append(f"{t:%Y-%m-%d %H:%M:%S} cust_{c:02d} /v1/items {status} {duration:.3f}\n")
                i += 1
    lines.sort()
    return lines


def expected(lines: list[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, list[tuple[int, float]]] = {}
    for line in lines:
        _, _, customer, _, status, duration = line.split()
        rows.setdefault(customer, []).append((int(status), float(duration)))
    out = {}
    for customer, rs in rows.items():
        total, failed = len(rs), sum(1 for s, _ in rs if s >= 400)
        out[customer] = {
            "total": total,
            "failed": failed,
            "server": sum(1 for s, _ in rs if s >= 500),
            "uptime": (total - failed) / total * 100,
            "median": statistics.median(d for _, d in rs),
            "p99": p99(sorted(d for _, d in rs)),
        }
    return out


def history_lines() -> list[str]:
    """cust_slo: 200 requests a day on HISTORY_DAYS (all before FROM, so not in the overview's range), a
    few 5xx on some days and a burst of them on three, and 404s that the SLO must not count."""
    lines = []
    for d, day in enumerate(HISTORY_DAYS):
        errors = 4 if 8 <= d <= 10 else 1 if d % 5 == 0 else 0
        for i in range(200):
            t = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=431 * i + 17)
            status = 503 if i < errors else 404 if i % 25 == 3 else 200
            lines.append(f"{t:%Y-%m-%d %H:%M:%S} cust_slo /v1/items {status} 0.{100 + i % 300:03d}\n")
    return lines


def budget_of(total: int, server: int, target_pct: float) -> float:
    """The README's definition: 1 − (5xx ÷ requests) ÷ (1 − target)."""
    return 1 - (server / total) / (1 - target_pct / 100)


def line_at(t: dt.datetime, customer: str, status: int = 200, duration: float = 0.123) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S} {customer} /v1/live {status} {duration:.3f}\n"


# ---------- real processes ----------


def settings_for(influxd: LocalInfluxd, tmp: Path, log: Path) -> Settings:
    env = {
        "INFLUXDB_URL": influxd.url,
        "INFLUXDB_DATABASE": f"t_{uuid.uuid4().hex[:12]}",
        "DEAD_LETTER_PATH": str(tmp / "rejected.jsonl"),
        "RECOVERY_DIR": str(tmp / "recovery"),
        "LOG_PATH": str(log),
        "POLL_INTERVAL_S": "0.05",
        "SNAPSHOT_INTERVAL_S": "0.5",
    }
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    writer = InfluxWriter(Connection.from_settings(settings))
    retention.ensure_database(writer)
    writer.close()
    return settings


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def stored_total(api: httpx.Client, customer: str) -> int:
    r = api.get(f"/customers/{customer}/stats", params={"from": FROM, "to": TO})
    return int(r.json()["summary"]["total_requests"]) if r.status_code == 200 else -1


@dataclass
class Fleet:
    settings: Settings
    api: httpx.Client
    log: Path
    lines: list[str]
    want: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.api.base_url).rstrip("/")


@pytest.fixture(scope="module")
def fleet(influxd: LocalInfluxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Known lines in a log tailed by a running `logpulse process`, one incident, and the API."""
    tmp = tmp_path_factory.mktemp("dashboard")
    log = tmp / "api_requests.log"
    lines = known_lines()
    history = history_lines()
    log.write_text("".join(lines + history))
    settings = settings_for(influxd, tmp, log)
    env = subprocess_env(settings, SLO_TARGETS=SLO_TARGETS)
    want = expected(lines)
    with open(tmp / "process.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=out, stderr=out)
    try:
        with running_api(env) as api:

            def all_stored() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"logpulse process exited: {(tmp / 'process.log').read_text()[-3000:]}")
                old = api.get("/customers/cust_slo/stats", params={"from": str(HISTORY_DAYS[0]), "to": FROM})
                return all(stored_total(api, c) == w["total"] for c, w in want.items()) and (
                    old.status_code == 200 and old.json()["summary"]["total_requests"] == len(history)
                )

            wait_until(all_stored, 60, "the known lines stored")
            still_open = Incident("cust_07", "errors", ns(NOW - dt.timedelta(hours=1)), ns(NOW), 9.0, 20)
            httpx.post(
                f"{settings.influxdb_url}/write",
                params={"db": settings.influxdb_database},
                content="\n".join(incident_line(i) for i in (KNOWN_INCIDENT, still_open)),
            ).raise_for_status()
            yield Fleet(settings, api, log, lines, want, history)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM.path())
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER.path()))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def leave_page(driver: Any) -> None:
    """Leave the current page and drop its console log: a page left open keeps polling (an API stopped by
    the previous test would otherwise show up as this test's console error)."""
    driver.get("about:blank")
    driver.get_log("browser")


def open_page(driver: Any, url: str, ready: str = "document.body.dataset.loaded === 'true'") -> None:
    driver.get(url)
    wait_js(driver, ready, 20)


ERROR_JS = "return document.body.dataset.error"


def wait_js(driver: Any, condition: str, timeout_s: float = 15) -> None:
    WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
        lambda d: d.execute_script(f"return Boolean({condition})"),
        message=f"page never satisfied: {condition}; its error: {driver.execute_script(ERROR_JS)}",
    )


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def table_rows(driver: Any) -> dict[str, dict[str, str]]:
    return driver.execute_script(
        """const out = {};
        for (const tr of document.querySelectorAll('#fleet tbody tr')) {
          const row = {};
          for (const cell of tr.cells) row[cell.dataset.col] = cell.textContent;
          out[tr.dataset.customer] = row;
        }
        return out;"""
    )


def shot(driver: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))


def shown(text: str, value: float, digits: int) -> bool:
    """The page shows value rounded to digits (JavaScript rounds halves up, Python's format to even)."""
    return abs(float(text) - value) <= 0.5 * 10**-digits + 1e-9


def fmt_int(n: int) -> str:
    return f"{n:,}"


# ---------- the tests ----------


def test_overview_lists_every_customer_with_right_numbers(fleet: Fleet, browser: Any) -> None:
    open_page(
        browser,
        f"{fleet.url}/dashboard?from={FROM}&to={TO}",
        "document.body.dataset.sparklines === 'true' && document.body.dataset.loaded === 'true'",
    )
    rows = table_rows(browser)
    assert set(rows) == set(fleet.want)
    for customer, w in fleet.want.items():
        row = rows[customer]
        assert row["total_requests"] == fmt_int(w["total"]), customer
        assert row["failed_requests"] == fmt_int(w["failed"]), customer
        assert shown(row["uptime"].removesuffix(" %"), w["uptime"], 2), customer
        assert shown(row["median_latency"], w["median"], 3), customer
        assert shown(row["p99_latency"], w["p99"], 3), customer
        budget = budget_of(w["total"], w["server"], 90.0)  # 5xx only, counted from the lines
        assert shown(row["error_budget_remaining"].removesuffix(" %"), budget * 100, 1), (customer, row, budget)
    red = browser.execute_script(
        "return [...document.querySelectorAll('#fleet tbody td.budget.alert')]"
        ".map((td) => td.parentNode.dataset.customer)"
    )
    assert sorted(red) == sorted(c for c, w in fleet.want.items() if budget_of(w["total"], w["server"], 90.0) <= 0)
    assert 0 < len(red) < len(fleet.want)  # the data has both: a real test of the colouring
    assert browser.execute_script("return !document.body.classList.contains('no-budget')")
    # open incidents: what the fleet API reports (ours on cust_07, and any the processor's scorer keeps open)
    since = (NOW - dt.timedelta(days=89)).date().isoformat()
    reported = fleet.api.get("/anomalies", params={"status": "open", "from": since, "limit": 5000}).json()
    open_counts = Counter(a["customer_id"] for a in reported["anomalies"])
    assert open_counts["cust_07"] >= 1
    for customer in fleet.want:
        assert rows[customer]["open_incidents"] == str(open_counts[customer]), customer
    totals = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#totals [data-total]')]"
        ".map((d) => [d.dataset.total, d.querySelector('dd').textContent]))"
    )
    assert totals["customers"] == "12"
    n, hurt = sum(open_counts.values()), len(open_counts)
    assert totals["open_incidents"] == f"{n} ({hurt} customer{'' if hurt == 1 else 's'})"
    assert totals["total_requests"] == fmt_int(sum(w["total"] for w in fleet.want.values()))
    assert totals["failed_requests"] == fmt_int(sum(w["failed"] for w in fleet.want.values()))
    # every visible row has a sparkline whose label counts that customer's last 24 h
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#fleet tbody tr')].map("
        "(tr) => [tr.dataset.customer, tr.querySelector('svg.sparkline')?.getAttribute('aria-label')])"
    )
    for customer, label in labels:
        assert label is not None and f"{fmt_int(fleet.want[customer]['total'])} requests" in label, (customer, label)
    live = browser.find_element(By.ID, "live")
    assert "Data last updated" in live.text and live.get_attribute("data-state") == "ok"  # caught up: not behind
    shot(browser, "overview.png")
    assert console_errors(browser) == []


def test_sorting_and_search_and_the_url_keeps_them(fleet: Fleet, browser: Any) -> None:
    open_page(browser, f"{fleet.url}/dashboard?from={FROM}&to={TO}")
    order = lambda: browser.execute_script(  # noqa: E731
        "return [...document.querySelectorAll('#fleet tbody tr')].map((tr) => tr.dataset.customer)"
    )
    by_uptime = sorted(fleet.want, key=lambda c: (fleet.want[c]["uptime"], c))
    assert order() == by_uptime  # default: worst uptime first
    header = browser.find_element(By.CSS_SELECTOR, "th[data-sort='total_requests'] button")
    header.click()
    assert order() == sorted(fleet.want, key=lambda c: (-fleet.want[c]["total"], c))
    th = browser.find_element(By.CSS_SELECTOR, "th[data-sort='total_requests']")
    assert th.get_attribute("aria-sort") == "descending"
    header.click()
    assert order() == sorted(fleet.want, key=lambda c: (fleet.want[c]["total"], c))
    assert th.get_attribute("aria-sort") == "ascending"
    budget = {c: budget_of(w["total"], w["server"], 90.0) for c, w in fleet.want.items()}
    browser.find_element(By.CSS_SELECTOR, "th[data-sort='error_budget_remaining'] button").click()
    assert order() == sorted(fleet.want, key=lambda c: (budget[c], c))  # least budget left first
    browser.find_element(By.CSS_SELECTOR, "th[data-sort='median_latency'] button").click()
    assert order() == sorted(fleet.want, key=lambda c: (-fleet.want[c]["median"], c))  # slowest first
    browser.find_element(By.CSS_SELECTOR, "th[data-sort='p99_latency'] button").send_keys("\n")  # keyboard
    assert order() == sorted(fleet.want, key=lambda c: (-fleet.want[c]["p99"], c))

    search = browser.find_element(By.ID, "search")
    search.send_keys("cust_1")
    assert set(order()) == {"cust_10", "cust_11"}
    assert "2 match" in browser.find_element(By.ID, "count").text
    url = browser.current_url
    assert "q=cust_1" in url and "sort=p99_latency" in url and "order=desc" in url
    open_page(browser, url)  # a shared link shows the same view
    assert order() == sorted(["cust_10", "cust_11"], key=lambda c: (-fleet.want[c]["p99"], c))
    assert browser.find_element(By.ID, "search").get_attribute("value") == "cust_1"
    assert console_errors(browser) == []


def test_customer_page_shows_series_and_incident_bands(fleet: Fleet, browser: Any) -> None:
    open_page(browser, f"{fleet.url}/dashboard/customers/cust_03?from={FROM}&to={TO}")
    want = fleet.want["cust_03"]
    summary = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#summary [data-key]')]"
        ".map((d) => [d.dataset.key, d.querySelector('dd').textContent]))"
    )
    assert summary["total_requests"] == fmt_int(want["total"])
    assert summary["failed_requests"] == fmt_int(want["failed"])
    assert shown(summary["p99_latency"], want["p99"], 3)
    series = browser.execute_script(
        "const el = document.getElementById('series-requests');"
        "return {interval: el.dataset.interval, ok: el.data[0].y, failed: el.data[1].y,"
        " bands: el.layout.shapes.map((s) => s.x0), drawn: el.querySelectorAll('.shapelayer path').length}"
    )
    assert series["interval"] == "15m"  # two days of range: 15-minute points
    assert sum(series["ok"]) + sum(series["failed"]) == want["total"]
    assert sum(series["failed"]) == want["failed"]
    # one band per incident the API reports (ours, plus any the processor's scorer found), each drawn
    reported = fleet.api.get("/customers/cust_03/anomalies", params={"from": FROM, "to": TO}).json()["anomalies"]
    assert sorted(series["bands"]) == sorted(
        dt.datetime.fromisoformat(a["start"]).strftime("%Y-%m-%d %H:%M:%S") for a in reported
    )
    assert f"{INCIDENT_START:%Y-%m-%d %H:%M:%S}" in series["bands"] and series["drawn"] >= len(reported)
    incident = browser.find_element(By.CSS_SELECTOR, f"#incidents tbody tr[data-id='{KNOWN_INCIDENT.id}']")
    assert "latency" in incident.text and INCIDENT_SUMMARY in incident.text and "resolved" in incident.text
    shot(browser, "customer.png")

    # zoom: the interval follows the range, the URL keeps the zoom
    drawn_for = (
        "(() => { const el = document.getElementById('series-requests'), q = new URLSearchParams(location.search);"
        " return el.dataset.range === `${q.get('zfrom')}|${q.get('zto')}` && el.dataset.interval === '%s'; })()"
    )
    incident.find_element(By.TAG_NAME, "button").click()  # an hour around the incident
    wait_js(browser, drawn_for % "15m")
    assert "zfrom=" in browser.current_url
    for days, interval in ((10, "1h"), (1.5, "15m"), (40, "1d")):
        browser.execute_script(
            "Plotly.relayout('series-requests', {'xaxis.range': [arguments[0], arguments[1]]})",
            f"{NOW - dt.timedelta(days=days):%Y-%m-%d %H:%M:%S}",
            f"{NOW:%Y-%m-%d %H:%M:%S}",
        )
        wait_js(browser, drawn_for % interval)
    assert console_errors(browser) == []


def test_customer_page_error_budget_burn_down(fleet: Fleet, browser: Any) -> None:
    """cust_slo (own target 99.5 %): the burn-down has one point per day, each the budget left over the
    30-day window ending that day as computed here from its lines, and the summary cards say the same."""
    first, last = HISTORY_DAYS[0], HISTORY_DAYS[-1]
    open_page(browser, f"{fleet.url}/dashboard/customers/cust_slo?from={first}&to={last}")
    wait_js(browser, "!document.getElementById('budget').hidden && document.getElementById('budget').data")
    chart = browser.execute_script(
        "const el = document.getElementById('budget');"
        "return {x: el.data[0].x, y: el.data[0].y, title: el.layout.title.text || el.layout.title}"
    )
    per_day: dict[str, list[int]] = {}
    for line in fleet.history:
        date, _, _, _, status, _ = line.split()
        per_day.setdefault(date, []).append(int(status))
    want = []
    for day in HISTORY_DAYS:  # the window (30 days) reaches back before the first day: no data there
        statuses = [
            s for d, ss in per_day.items() if day - dt.timedelta(days=29) <= dt.date.fromisoformat(d) <= day for s in ss
        ]
        want.append(budget_of(len(statuses), sum(1 for s in statuses if s >= 500), 99.5) * 100)
    assert chart["x"] == [str(d) for d in HISTORY_DAYS]
    assert chart["y"] == pytest.approx(want, rel=1e-9)
    assert "SLO 99.5 %" in str(chart["title"])
    low = chart["y"].index(min(chart["y"]))
    assert low == 10 and chart["y"][low] < 0 < chart["y"][-1]  # overspent by the burst's last day, then recovering
    summary = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#summary [data-key]')]"
        ".map((d) => [d.dataset.key, d.querySelector('dd').textContent]))"
    )
    assert summary["slo_target"] == "99.50 %"
    assert shown(summary["error_budget_remaining"].removesuffix(" %"), want[-1], 1)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        browser.find_element(By.ID, "budget").screenshot(str(Path(SCREENSHOTS) / "budget.png"))
    assert console_errors(browser) == []


def test_customer_page_in_a_zone_of_quarter_hour_offset(fleet: Fleet, browser: Any) -> None:
    """Asia/Kathmandu (+5:45): local days, series and bands drawn at local wall-clock times."""
    tz = ZoneInfo("Asia/Kathmandu")
    local_now = NOW.astimezone(tz)
    frm, to = (local_now - dt.timedelta(days=1)).date().isoformat(), local_now.date().isoformat()
    open_page(browser, f"{fleet.url}/dashboard/customers/cust_03?from={frm}&to={to}&tz=Asia/Kathmandu")
    series = browser.execute_script(
        "const el = document.getElementById('series-requests');"
        "return {ok: el.data[0].y, failed: el.data[1].y, x: el.data[0].x, bands: el.layout.shapes.map((s) => s.x0)}"
    )
    want = fleet.want["cust_03"]  # all of it lies within yesterday and today in Kathmandu too
    assert sum(series["ok"]) + sum(series["failed"]) == want["total"]
    assert all(x[14:16] in ("00", "15", "30", "45") for x in series["x"])  # local quarter-hours
    reported = fleet.api.get(
        "/customers/cust_03/anomalies", params={"from": frm, "to": to, "tz": "Asia/Kathmandu"}
    ).json()["anomalies"]
    assert sorted(series["bands"]) == sorted(
        dt.datetime.fromisoformat(a["start"]).strftime("%Y-%m-%d %H:%M:%S") for a in reported
    )
    assert f"{INCIDENT_START.astimezone(tz):%Y-%m-%d %H:%M:%S}" in series["bands"]
    assert console_errors(browser) == []


def test_a_line_appended_to_the_log_shows_up_without_reload(fleet: Fleet, browser: Any) -> None:
    open_page(browser, f"{fleet.url}/dashboard?from={FROM}&to={TO}")  # the server-sorted first page: cheap refresh
    before = fleet.want["cust_05"]["total"]
    assert table_rows(browser)["cust_05"]["total_requests"] == fmt_int(before)
    browser.execute_script("window.__notReloaded = true")
    t0 = time.monotonic()
    with open(fleet.log, "a") as f:
        f.write(line_at(dt.datetime.now(dt.UTC), "cust_05", 503))
    wait_js(
        browser,
        f"document.querySelector('#fleet tbody tr[data-customer=cust_05] [data-col=total_requests]')"
        f".textContent === '{fmt_int(before + 1)}'",
        30,
    )
    seen_s = time.monotonic() - t0
    assert browser.execute_script("return window.__notReloaded") is True
    row = table_rows(browser)["cust_05"]
    assert row["failed_requests"] == fmt_int(fleet.want["cust_05"]["failed"] + 1)
    w = fleet.want["cust_05"]  # the 503 spends budget too
    assert shown(
        row["error_budget_remaining"].removesuffix(" %"), budget_of(before + 1, w["server"] + 1, 90.0) * 100, 1
    )
    print(f"\nappended line visible on the open overview after {seen_s:.1f} s")
    assert console_errors(browser) == []
    fleet.want["cust_05"]["total"] += 1
    fleet.want["cust_05"]["failed"] += 1
    fleet.want["cust_05"]["server"] += 1


def test_processor_behind_is_shown_without_reload(fleet: Fleet, browser: Any) -> None:
    """A write mark saying 5 MiB are unread (as a processor working through a backlog writes) turns the
    open page's status line into "processor behind"; the next mark with nothing unread turns it back."""
    open_page(browser, f"{fleet.url}/dashboard?from={FROM}&to={TO}")
    live = "document.getElementById('live')"
    wait_js(browser, f"{live}.dataset.state === 'ok'")
    writer = InfluxWriter(Connection.from_settings(fleet.settings))
    try:
        now = time.time_ns()
        writer.write(write_mark_lines({"cust_00": (now - 10**9, now - 10**9)}, 0, now, 5 << 20), rp=MARKS_RP)
        wait_js(browser, f"{live}.dataset.state === 'behind'", 10)
        assert "processor behind: 5.0 MiB of log not read yet" in browser.find_element(By.ID, "live").text
        writer.write(write_mark_lines({"cust_00": (now - 10**9, now - 10**9)}, 0, time.time_ns(), 0), rp=MARKS_RP)
        wait_js(browser, f"{live}.dataset.state === 'ok'", 10)
    finally:
        writer.close()
    assert console_errors(browser) == []


def test_phone_layout(fleet: Fleet, browser: Any) -> None:
    browser.set_window_size(390, 844)
    try:
        open_page(browser, f"{fleet.url}/dashboard?from={FROM}&to={TO}")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390 + 1  # the page does not scroll sideways; the table scrolls in its own box
        shot(browser, "overview-phone.png")
        open_page(browser, f"{fleet.url}/dashboard/customers/cust_03?from={FROM}&to={TO}")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390 + 1
        shot(browser, "customer-phone.png")
        assert console_errors(browser) == []
    finally:
        browser.set_window_size(1400, 1000)


FIGURES_JS = """const nav = performance.getEntriesByType('navigation')[0];
            const first = performance.getEntriesByName('logpulse-first-render')[0].startTime;
            const res = performance.getEntriesByType('resource');
            const before = res.filter((r) => r.responseEnd <= first);
            const sum = (rs, k) => rs.reduce((a, r) => a + r[k], 0);
            const stats = res.filter((r) => r.name.includes('/stats?'));
            return {first_render_ms: first, rows: document.querySelectorAll('#fleet tbody tr').length,
              customers: document.querySelector('#totals [data-total=customers] dd').textContent,
              bytes_before_render: nav.encodedBodySize + sum(before, 'encodedBodySize'),
              bytes_before_render_uncompressed: nav.decodedBodySize + sum(before, 'decodedBodySize'),
              requests_before_render: 1 + before.length,
              slowest: res.slice().sort((a, b) => b.duration - a.duration).slice(0, 3)
                .map((r) => `${new URL(r.name).pathname} ${Math.round(r.startTime)}+${Math.round(r.duration)} ms`),
              stats_bytes: sum(stats, 'encodedBodySize'), stats_bytes_uncompressed: sum(stats, 'decodedBodySize')};"""


def test_thousand_customers_first_render(influxd: LocalInfluxd, browser: Any, tmp_path: Path) -> None:
    """1,000 customers through `logpulse ingest`: first render time and payload (reported, not asserted)."""
    log = tmp_path / "fleet.log"
    start = NOW - dt.timedelta(hours=12)
    log.write_text(
        "".join(
            line_at(start + dt.timedelta(seconds=37 * i + c), f"c{c:04d}", 500 if (i + c) % 9 == 0 else 200)
            for c in range(1000)
            for i in range(3)
        )
    )
    settings = settings_for(influxd, tmp_path, log)
    env = subprocess_env(settings)
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with running_api(env) as api:
        url = str(api.base_url).rstrip("/") + f"/dashboard?from={FROM}&to={TO}"
        open_page(browser, url)  # cold: a new API process on a new port (origin): nothing cached anywhere
        cold = browser.execute_script(FIGURES_JS)
        open_page(browser, url)  # warm: as a returning user (API answer cache and browser cache filled)
        figures = browser.execute_script(FIGURES_JS)
        figures["cold"] = {k: cold[k] for k in ("first_render_ms", "bytes_before_render", "slowest")}
        wait_js(browser, "document.body.dataset.sparklines === 'true'", 30)
        figures["bytes_with_sparklines"] = browser.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return n.encodedBodySize + performance.getEntriesByType('resource')"
            ".reduce((a, r) => a + r.encodedBodySize, 0)"
        )
        assert console_errors(browser) == []
        leave_page(browser)
    assert figures["customers"] == "1,000" and figures["rows"] == 50
    print("\n1,000-customer overview: " + json.dumps(figures))


def test_api_key_is_asked_once_and_kept(fleet: Fleet, browser: Any) -> None:
    """With API_KEY set the pages load, ask for the key once (however many requests got a 401) and keep it."""
    env = subprocess_env(fleet.settings, API_KEY="s3cret-key")
    with running_api(env) as api:
        url = str(api.base_url).rstrip("/") + f"/dashboard?from={FROM}&to={TO}"
        leave_page(browser)
        browser.get(url)
        prompt = WebDriverWait(browser, 15).until(expected_conditions.alert_is_present())
        prompt.send_keys("s3cret-key")
        prompt.accept()
        wait_js(browser, "document.body.dataset.loaded === 'true'")
        assert set(table_rows(browser)) == set(fleet.want)
        wait_js(browser, "document.getElementById('live').dataset.state === 'ok'")  # polled with the key
        assert not expected_conditions.alert_is_present()(browser)  # and no second prompt
        open_page(browser, url)  # the key is kept: no prompt on the next visit
        errors = console_errors(browser)
        assert all("status of 401" in e["message"] for e in errors), errors  # only the first visit's 401s
        browser.execute_script("sessionStorage.removeItem('logpulse-api-key')")
        leave_page(browser)


def test_api_docs_render_under_the_content_security_policy(fleet: Fleet, browser: Any) -> None:
    """Swagger UI runs its one inline start-up script (allowed by hash) and nothing the policy refuses."""
    leave_page(browser)
    open_page(browser, f"{fleet.url}/docs", "document.querySelectorAll('.opblock').length > 5")
    assert "default-src 'self'" in fleet.api.get("/docs").headers["Content-Security-Policy"]
    assert console_errors(browser) == []
    leave_page(browser)
