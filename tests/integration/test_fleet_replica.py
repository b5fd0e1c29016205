"""The fleet sorted by median or p99 from the API's in-memory replica of whole days, against a real
influxd: the same answers as the API with the replica off (FLEET_REPLICA_MAX_ENTRIES=0) in zones whose
days are whole UTC days and in zones whose edges are hours and quarter-hours; data ingested after the
replica loaded (`logpulse ingest`, which writes the `writes` marks) is in the next answer; and after
the API could not poll the marks (InfluxDB unreachable for it, through a proxy the test cuts, while
`ingest` wrote straight to InfluxDB), the answers are still the data's; and while a live `process`
writes a day of many customers, answered all along, the answers settle on the data's. Dates are
fixed, never today's: the replica keys on the marks' times and on when its tables changed, not on
the date.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from fixtures import Appender, expected_figures, proxy_to, rollup_lines, running_api, subprocess_env
from logpulse.config import Settings
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.points import ROLLUP_RP

NS = 10**9
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
DAYS = 8
FIRST, LAST = dt.date(2026, 3, 3), dt.date(2026, 3, 8)  # whole local days inside the data in every zone
ZONES = ("UTC", "America/New_York", "Asia/Kathmandu")
Record = tuple[str, int, int, str]  # customer, time ns, status, duration text


def records(seed: int = 11) -> list[Record]:
    """Ten customers of different latencies and volumes, one only on some days, one with 4-decimal
    durations (approximate histograms), and a twin of another (ties in every sort)."""
    rng = random.Random(seed)
    out: list[Record] = []
    for k in range(10):
        mu, n = rng.uniform(-3, 0), rng.randrange(50, 900)
        for _ in range(n):
            day = rng.randrange(DAYS) if k != 4 else rng.choice((1, 2, 6))
            t = int(START.timestamp()) * NS + day * 86_400 * NS + rng.randrange(86_400 * NS)
            digits = 4 if k == 7 else 3
            out.append(
                (f"cust_{k}", t, rng.choice((200, 200, 201, 404, 500)), f"{rng.lognormvariate(mu, 0.8):.{digits}f}")
            )
    return out + [("cust_twin", t, s, d) for c, t, s, d in out if c == "cust_3"]


def metric(api: httpx.Client, name: str) -> float:
    """A sample of the API's /metrics (0 when absent), e.g. 'logpulse_fleet_replica_trusted'."""
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def wait_trusted(api: httpx.Client, timeout_s: float = 15.0) -> None:
    """Until the API has polled the marks successfully (the replica follows them from then on)."""
    deadline = time.monotonic() + timeout_s
    while metric(api, "logpulse_fleet_replica_trusted") != 1.0:
        assert time.monotonic() < deadline, "the API never polled the writes marks"
        time.sleep(0.1)


def fleet(api: httpx.Client, zone: str, sort: str, order: str, **extra: object) -> dict[str, object]:
    params = {"from": str(FIRST), "to": str(LAST), "tz": zone, "sort": sort, "order": order, "limit": 1000, **extra}
    answer = api.get("/stats", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


REPLICA = 'logpulse_fleet_quantile_answers_total{source="replica"}'
INFLUXDB = 'logpulse_fleet_quantile_answers_total{source="influxdb"}'


def test_replica_answers_equal_the_answers_without_it_in_three_zones(influx_settings: Settings) -> None:
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(rollup_lines(records(), parts=2, fleet=True, tables=True), rp=ROLLUP_RP)
    writer.close()
    env = subprocess_env(influx_settings, STATS_CACHE_S="0")
    with running_api(env) as on, running_api({**env, "FLEET_REPLICA_MAX_ENTRIES": "0"}) as off:
        wait_trusted(on)
        asked = 0
        for zone in ZONES:
            for sort in ("median_latency", "p99_latency"):
                for order in ("asc", "desc"):
                    got, want = fleet(on, zone, sort, order), fleet(off, zone, sort, order)
                    assert got == want, (zone, sort, order)
                    labels = {c["customer_id"]: c["quantiles"] for c in got["customers"]}  # type: ignore[attr-defined]
                    assert labels["cust_7"] == "approximate" and labels["cust_0"] == "exact"
                    paged = fleet(on, zone, sort, order, limit=3)
                    assert paged["customers"] == got["customers"][:3]  # type: ignore[index]
                    asked += 2
        assert metric(on, REPLICA) == asked and metric(on, INFLUXDB) == 0
        # each day read once (the UTC range's days hold the other zones' whole days), and the two edge
        # intervals of New York and of Kathmandu
        assert metric(on, 'logpulse_fleet_replica_reads_total{kind="day"}') == (LAST - FIRST).days + 1
        assert metric(on, 'logpulse_fleet_replica_reads_total{kind="edge"}') == 4
        assert metric(off, REPLICA) == 0


def ingest(env: dict[str, str], log: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "logpulse", "ingest", str(log)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


def slow_lines(customer: str, day: dt.date, n: int) -> str:
    """n requests of 9.5 s and more on `day` (a customer's p99 moves)."""
    return "".join(f"{day} 12:{i // 60:02d}:{i % 60:02d} {customer} /slow 200 {9.5 + i / 1000:.3f}\n" for i in range(n))


def lines_figures(log_text: str, customer: str) -> dict[str, float]:
    rows = [line.split(" ") for line in log_text.splitlines() if line.split(" ")[2] == customer]
    return expected_figures([(int(r[4]), float(r[5])) for r in rows if FIRST <= dt.date.fromisoformat(r[0]) <= LAST])


def row_of(body: dict[str, object], customer: str) -> dict[str, object]:
    return next(c for c in body["customers"] if c["customer_id"] == customer)  # type: ignore[attr-defined]


def test_data_ingested_after_the_replica_loaded_is_in_the_next_answer(
    influx_settings: Settings, tmp_path: Path
) -> None:
    env = subprocess_env(influx_settings, STATS_CACHE_S="0", SCORING_ENABLED="false")
    log = tmp_path / "first.log"
    options = ["--mode", "classic", "--count", "4000", "--days", "8", "--seed", "2", "--customers", "6", "--rate", "0"]
    subprocess.run(
        [sys.executable, "-m", "logpulse", "generate", "--out", str(log), *options, "--end", "2026-03-09"],
        env=env,
        check=True,
        capture_output=True,
    )
    ingest(env, log)
    with running_api(env) as on, running_api({**env, "FLEET_REPLICA_MAX_ENTRIES": "0"}) as off:
        wait_trusted(on)
        for zone in ZONES[::-1]:  # every zone's days and edge intervals loaded
            assert fleet(on, zone, "p99_latency", "desc") == fleet(off, zone, "p99_latency", "desc"), zone
        before = fleet(on, "UTC", "p99_latency", "desc")
        assert row_of(before, "cust_2")["p99_latency"] == lines_figures(log.read_text(), "cust_2")["p99_latency"]

        late = tmp_path / "late.log"
        late.write_text(
            slow_lines("cust_2", dt.date(2026, 3, 5), 300)  # a loaded day of a known customer
            + slow_lines("cust_new", dt.date(2026, 3, 6), 5)  # a customer never seen
            + slow_lines("cust_1", dt.date(2026, 3, 3), 20)  # in New York's first edge interval (12:00 UTC)
            + slow_lines("cust_3", dt.date(2026, 3, 8), 20)  # in Kathmandu's last one
        )
        ingest(env, late)
        time.sleep(1.5)  # three polls of the marks (POLL_S = 0.5 s)
        both = log.read_text() + late.read_text()
        for zone in ZONES:
            after = fleet(on, zone, "p99_latency", "desc")
            assert after == fleet(off, zone, "p99_latency", "desc"), zone
        after = fleet(on, "UTC", "p99_latency", "desc")
        for customer in ("cust_1", "cust_2", "cust_3", "cust_new"):
            want = lines_figures(both, customer)
            assert row_of(after, customer)["p99_latency"] == want["p99_latency"]
            assert row_of(after, customer)["median_latency"] == want["median_latency"]
        assert row_of(after, "cust_2")["p99_latency"] != row_of(before, "cust_2")["p99_latency"]
        assert metric(on, 'logpulse_fleet_replica_reads_total{kind="customers"}') >= 3
        assert metric(on, INFLUXDB) == 0


def test_after_the_marks_could_not_be_polled_answers_are_still_the_datas(
    influx_settings: Settings, tmp_path: Path
) -> None:
    """Marks written while the API could not poll them (longer than the poll's look-back) are never
    seen: neither the replica nor the answer cache (`cached`, STATS_CACHE_S=60) may serve what they
    held as it was."""
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(rollup_lines(records(), parts=2, fleet=True, tables=True), rp=ROLLUP_RP)
    writer.close()
    env = subprocess_env(influx_settings, STATS_CACHE_S="0", SCORING_ENABLED="false")
    with proxy_to(influx_settings.influxdb_url) as proxy:
        proxied = {**env, "INFLUXDB_URL": f"http://127.0.0.1:{proxy.port}", "INFLUXDB_TIMEOUT_S": "2"}
        with (
            running_api(proxied) as on,
            running_api({**env, "FLEET_REPLICA_MAX_ENTRIES": "0"}) as off,
            running_api({**proxied, "STATS_CACHE_S": "60"}) as cached,
        ):
            wait_trusted(on)
            before = fleet(on, "UTC", "p99_latency", "desc")
            assert before == fleet(off, "UTC", "p99_latency", "desc")
            wait_trusted(cached)
            stats = {"from": str(FIRST), "to": str(LAST)}
            held = cached.get("/customers/cust_5/stats", params=stats).json()
            assert cached.get("/customers/cust_5/stats", params=stats).json() == held  # the cached answer
            proxy.cut()
            late = tmp_path / "late.log"
            late.write_text(slow_lines("cust_5", dt.date(2026, 3, 4), 200))
            ingest(env, late)  # straight to InfluxDB, marks included
            time.sleep(12)  # the marks' look-back (10 s) passes without a poll
            for api in (on, cached):  # InfluxDB unreachable (and the API no longer trusts its marks)
                assert api.get("/stats", params={**stats, "sort": "p99_latency"}).status_code >= 500
            proxy.open = True
            wait_trusted(on)
            wait_trusted(cached)  # a poll succeeded after the gap: the answers it held are dropped
            fresh = cached.get("/customers/cust_5/stats", params=stats).json()
            assert fresh == off.get("/customers/cust_5/stats", params=stats).json()
            assert fresh["summary"]["total_requests"] == held["summary"]["total_requests"] + 200
            for zone in ZONES:
                after = fleet(on, zone, "p99_latency", "desc")
                assert after == fleet(off, zone, "p99_latency", "desc"), zone
            assert row_of(after, "cust_5")["p99_latency"] != row_of(before, "cust_5")["p99_latency"]
            assert after["customers"][0]["customer_id"] == "cust_5"  # type: ignore[index]
            # the days were read again, whole: the replica was emptied when polling resumed
            assert metric(on, 'logpulse_fleet_replica_reads_total{kind="day"}') == 2 * ((LAST - FIRST).days + 1)


LIVE_DAY = dt.date(2026, 3, 6)
LIVE = [f"live-{k}.x" for k in range(150)]  # ids with `-` and `.`: read by name through a regex


def live_lines(rng: random.Random, customers: list[str], bursts: int) -> list[str]:
    """`bursts` runs of one request on LIVE_DAY for each customer, each run in random order: appended a
    run at a time, every flush of the processor marks each of them (a live log of many customers)."""
    lines = []
    for _ in range(bursts):
        run = [
            f"{LIVE_DAY} {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d} {c} /live "
            f"{rng.choice((200, 200, 404, 503))} {rng.lognormvariate(-2, 1):.3f}\n"
            for c in customers
        ]
        rng.shuffle(run)
        lines += run
    return lines


def wait_for(what: str, ready: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def asking(api: httpx.Client, stop: threading.Event, statuses: list[int]) -> None:
    """The fleet by p99 and by median in every zone, answer after answer, until `stop`."""
    for zone, sort in itertools.cycle(itertools.product(ZONES, ("p99_latency", "median_latency"))):
        if stop.is_set():
            return
        params = {"from": str(FIRST), "to": str(LAST), "tz": zone, "sort": sort, "limit": 1000}
        statuses.append(api.get("/stats", params=params).status_code)


def live_round(on: httpx.Client, off: httpx.Client, log: Path, lines: list[str], burst: int, total: int) -> None:
    """Append the lines to the tailed log, `burst` at a time, while `on` answers; return once InfluxDB
    holds `total` requests of the range (`off` counts them) and `on` answers as `off` in every zone
    and sort."""
    appender = Appender(log, lines, burst=burst, pause_s=0.4)
    stop = threading.Event()
    statuses: list[int] = []
    client = threading.Thread(target=asking, args=(on, stop, statuses))
    appender.start()
    client.start()
    try:
        appender.join()
        wait_for(
            "InfluxDB holds every line written",
            lambda: fleet(off, "UTC", "p99_latency", "desc")["total"]["total_requests"] == total,  # type: ignore[index]
        )
    finally:
        stop.set()
        client.join()
    assert len(statuses) >= 3 and set(statuses) == {200}, statuses
    for zone in ZONES:
        for sort in ("p99_latency", "median_latency"):
            want = fleet(off, zone, sort, "desc")
            wait_for(f"{zone} {sort}: the replica answers the data", lambda: fleet(on, zone, sort, "desc") == want, 15)  # noqa: B023


def test_while_a_processor_writes_a_day_of_many_customers_answers_settle_on_the_datas(
    influx_settings: Settings, tmp_path: Path
) -> None:
    """Rounds of lines on one day for 150 customers (of the day's 160: a whole-day re-read), then 100
    of them (read by name, more than the 64 read so before), then the 150 again, each round in four
    bursts 0.4 s apart of a line per customer, tailed by `logpulse process` while a client asks the
    replica for the fleet by p99 and by median in three zones, answer after answer, so that re-reads
    and marks interleave. After each round, once InfluxDB holds it (the
    API without the replica counts every line), the replica's answers must equal that API's: a row a
    re-read left stale would stay so, as no later mark reads it again. The rows match the lines
    themselves, and the days that did not change were ranked folded."""
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    writer.write(rollup_lines(records(), parts=2, fleet=True, tables=True), rp=ROLLUP_RP)
    writer.close()
    log = tmp_path / "live.log"
    log.write_text("")
    env = subprocess_env(
        influx_settings,
        STATS_CACHE_S="0",
        SCORING_ENABLED="false",
        LOG_PATH=str(log),
        ROLLUP_FLUSH_S="0.2",
        POLL_INTERVAL_S="0.05",
    )
    rng = random.Random(5)
    total = sum(1 for _, t, _, _ in records() if FIRST <= dt.datetime.fromtimestamp(t / NS, dt.UTC).date() <= LAST)
    written: list[str] = []
    with (
        running_api(env) as on,
        running_api({**env, "FLEET_REPLICA_MAX_ENTRIES": "0"}) as off,
        open(tmp_path / "processor.out", "ab") as out,
    ):
        wait_trusted(on)
        assert fleet(on, "UTC", "p99_latency", "desc") == fleet(off, "UTC", "p99_latency", "desc")
        processor = subprocess.Popen([sys.executable, "-m", "logpulse", "process"], env=env, stdout=out, stderr=out)
        try:
            for customers in (LIVE, rng.sample(LIVE, 100), LIVE):
                lines = live_lines(rng, customers, bursts=4)
                written += lines
                total += len(lines)
                live_round(on, off, log, lines, len(customers), total)
        finally:
            processor.terminate()
            assert processor.wait(60) == 0
        after = fleet(on, "UTC", "p99_latency", "desc")
        for customer in ("live-0.x", "live-77.x", LIVE[-1]):
            want = lines_figures("".join(written), customer)
            got = row_of(after, customer)
            assert (got["p99_latency"], got["median_latency"]) == (want["p99_latency"], want["median_latency"])
            assert got["quantiles"] == "exact"
        assert row_of(after, "cust_7")["quantiles"] == "approximate"
        assert metric(on, 'logpulse_fleet_replica_reads_total{kind="customers"}') >= 1
        assert metric(on, 'logpulse_fleet_replica_reads_total{kind="day"}') > (LAST - FIRST).days + 1
        assert metric(on, "logpulse_fleet_replica_folds_total") >= 1
        # the processor's restart mark empties the replica once: an answer whose load it cut short is
        # read from InfluxDB (as are answers while polls run late on a loaded machine); the rest are the
        # replica's, and every one was checked above
        assert metric(on, INFLUXDB) <= max(1.0, 0.1 * metric(on, REPLICA)), (metric(on, INFLUXDB), metric(on, REPLICA))
