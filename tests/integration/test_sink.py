"""The InfluxDB sink against a real influxd: acknowledged writes, retries through an outage, give-up."""

from __future__ import annotations

import random
import threading
import time

import pytest

from fixtures import proxy_to, stored_marks
from logpulse.config import Settings
from logpulse.flow.sinks.influx import InfluxSink, WriteGaveUp
from logpulse.model import ParsedChunk, RequestBatch, RequestColumns, ScoredBatch
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd


def batch(customer: str, n: int, start_ns: int = 1_700_000_000 * 10**9) -> tuple[str, ScoredBatch]:
    b = RequestBatch(
        customer,
        [start_ns + i for i in range(n)],
        ["/p"] * n,
        ["200" if i % 4 else "503" for i in range(n)],
        ["0.100"] * n,
    )
    return customer, ScoredBatch(b)


def count(writer: InfluxWriter, measurement: str = "requests") -> int:
    res = writer.query(f'SELECT COUNT(*) FROM "{measurement}"')
    series = res[0].get("series")
    return max(series[0]["values"][0][1:]) if series else 0


@pytest.fixture()
def private_influxd(tmp_path):
    db = LocalInfluxd.start(tmp_path / "influx")
    yield db
    db.stop()


def settings_for(db: LocalInfluxd, **kw) -> Settings:
    return Settings(_env_file=None, influxdb_url=db.url, influxdb_database="sinktest", write_batch_points=100, **kw)


def test_writes_all_points_in_parallel_batches_and_marks(private_influxd: LocalInfluxd) -> None:
    s = settings_for(private_influxd)
    writer = InfluxWriter(Connection.from_settings(s))
    retention.ensure_database(writer)
    part = InfluxSink(s).build("out", 0, 1)
    part.write_batch([batch("a", 1050), batch("b", 7)])
    part.close()
    assert count(writer) == 1057
    assert set(stored_marks(writer)) == {"a", "b"}
    writer.close()


def stored(writer: InfluxWriter) -> tuple[list[object], dict[str, tuple[int, int]]]:
    """Every request point (customer, time, fields) and each customer's marked time range."""
    res = writer.query('SELECT * FROM "requests" GROUP BY "customer_id"')[0]["series"]
    points = sorted((m["tags"]["customer_id"], *row) for m in res for row in m["values"])
    return points, stored_marks(writer)


def interleaved(batches: dict[str, RequestBatch]) -> RequestColumns:
    """The batches' requests as one chunk's columns, customers' lines shuffled together."""
    rows = [
        (b.customer_id, *r)
        for b in batches.values()
        for r in zip(b.times, b.paths, b.statuses, b.durations, strict=True)
    ]
    random.Random(7).shuffle(rows)
    customers, times, paths, statuses, durations = (list(c) for c in zip(*rows, strict=True))
    return RequestColumns.of_lines(customers, times, paths, statuses, durations)


def test_a_whole_unscored_chunk_writes_what_one_item_per_customer_writes(private_influxd: LocalInfluxd) -> None:
    """Scoring off, the dataflow hands the sink a chunk's requests as columns in one item (customers'
    lines interleaved, as in a log): the same points and the same marked time ranges as one item per
    customer (times out of order within a batch)."""
    t0 = 1_700_000_000 * 10**9
    batches = {c: batch(c, n, t0 + 1000 * i)[1].batch for i, (c, n) in enumerate([("a", 3), ("b", 1), ("c", 250)])}
    batches["a"].times.reverse()
    batches["c"].paths[7] = '/quote"d'
    results = []
    for db, items in (
        ("per_customer", [(c, ScoredBatch(b)) for c, b in batches.items()]),
        ("per_chunk", [("7", ParsedChunk(interleaved(batches), [], 254))]),
    ):
        s = Settings(_env_file=None, influxdb_url=private_influxd.url, influxdb_database=db, write_batch_points=100)
        writer = InfluxWriter(Connection.from_settings(s))
        retention.ensure_database(writer)
        part = InfluxSink(s).build("out", 0, 1)
        part.write_batch(items)
        part.close()
        results.append(stored(writer))
        writer.close()
    assert len(results[0][0]) == 254
    assert results[0][1]["a"] == (t0, t0 + 2)
    assert results[1] == results[0]


def test_retries_through_an_outage_and_loses_nothing(private_influxd: LocalInfluxd) -> None:
    s = settings_for(private_influxd, write_give_up_s=120)
    writer = InfluxWriter(Connection.from_settings(s))
    retention.ensure_database(writer)
    part = InfluxSink(s).build("out", 0, 1)
    private_influxd.stop()
    restarter = threading.Timer(3.0, private_influxd.restart)
    restarter.start()
    started = time.monotonic()
    part.write_batch([batch("a", 500)])  # blocks until influxd is back and acknowledged
    assert time.monotonic() - started >= 2.5
    restarter.join()
    part.close()
    assert count(writer) == 500
    writer.close()


def test_gives_up_after_the_configured_time(private_influxd: LocalInfluxd) -> None:
    s = settings_for(private_influxd, write_give_up_s=2)
    retention.ensure_database(InfluxWriter(Connection.from_settings(s)))
    part = InfluxSink(s).build("out", 0, 1)
    private_influxd.stop()
    started = time.monotonic()
    with pytest.raises(WriteGaveUp):
        part.write_batch([batch("a", 10)])
    assert 1.5 <= time.monotonic() - started < 30
    part.close()


def test_close_waits_for_a_mark_write_in_flight(private_influxd: LocalInfluxd, caplog) -> None:
    """The marks' timer took a customer's mark and is writing it when the sink closes: close must let
    that write finish before it closes the HTTP client, or the mark is lost (seen under load as
    "could not write cache-invalidation marks: the client has been closed")."""
    with proxy_to(private_influxd.url) as proxy:
        s = settings_for(private_influxd).model_copy(update={"influxdb_url": f"http://127.0.0.1:{proxy.port}"})
        writer = InfluxWriter(Connection.from_settings(settings_for(private_influxd)))
        retention.ensure_database(writer)
        part = InfluxSink(s).build("out", 0, 1)
        part.write_batch([batch("a", 5)])  # acknowledged; its mark is written by the timer, 0.5 s later
        proxy.hold()
        deadline = time.monotonic() + 10
        while proxy.held == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proxy.held, "the marks' timer did not write"
        closer = threading.Thread(target=part.close)
        closer.start()
        closer.join(1.0)
        assert closer.is_alive(), "close returned while a mark was still being written"
        proxy.release()
        closer.join(30)
        assert not closer.is_alive()
    assert set(stored_marks(writer)) == {"a"}
    assert "could not write cache-invalidation marks" not in caplog.text
    writer.close()


def test_a_tailing_writer_marks_its_restart_and_ingest_does_not(private_influxd: LocalInfluxd) -> None:
    """A tailing run (recovery) writes one mark of no customer when it starts, before any data; an
    `ingest` run (pipelined) writes none: it is run again whole after an interruption."""
    s = settings_for(private_influxd)
    writer = InfluxWriter(Connection.from_settings(s))
    retention.ensure_database(writer)

    def restarts() -> int:
        found = writer.query('SELECT COUNT("every") FROM "marks"."writes"')[0].get("series")
        return int(found[0]["values"][0][1]) if found else 0

    ingest = InfluxSink(s, pipelined=True).build("out", 0, 1)
    ingest.write_batch([batch("a", 3)])
    ingest.close()
    assert restarts() == 0
    tailing = InfluxSink(s).build("out", 0, 1)
    deadline = time.monotonic() + 10
    while restarts() == 0 and time.monotonic() < deadline:  # the first flush, 0.5 s after the start
        time.sleep(0.1)
    assert restarts() == 1
    tailing.write_batch([batch("a", 3)])
    tailing.close()
    assert restarts() == 1
    writer.close()
