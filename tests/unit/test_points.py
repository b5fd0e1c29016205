"""Line-protocol encoding: what InfluxDB receives for each request and incident."""

from __future__ import annotations

from logpulse.model import Incident, RequestBatch, ScoredBatch
from logpulse.storage.points import incident_line, request_lines, write_mark_line


def test_request_fields_and_failed_flag() -> None:
    b = RequestBatch("cust_1", [10, 20, 30], ["/a", "/b", "/c"], ["200", "399", "400"], ["0.5", "1", "2.250"])
    lines = request_lines(ScoredBatch(b))
    assert lines[0] == 'requests,customer_id=cust_1 path="/a",status=200i,failed=0i,duration=0.5 10'
    assert "status=399i,failed=0i,duration=1 20" in lines[1]
    assert lines[2].endswith("status=400i,failed=1i,duration=2.250 30")


def test_string_field_escaping() -> None:
    b = RequestBatch("c", [1, 2], ['/q"x', "/a\\b"], ["200", "200"], ["1", "1"])
    lines = request_lines(ScoredBatch(b))
    assert 'path="/q\\"x"' in lines[0]
    assert 'path="/a\\\\b"' in lines[1]


def test_scores_and_incidents() -> None:
    b = RequestBatch("c", [5], ["/a"], ["500"], ["3"])
    assert request_lines(ScoredBatch(b, [12.34567]))[0].endswith(",anomaly_score=12.35 5")
    inc = Incident("c", "errors", 100, 200, 7.5, 42, summary='errors 9% "now"', detected_ns=150)
    assert incident_line(inc) == (
        "anomalies,customer_id=c,kind=errors end=200i,score=7.5,requests=42i,"
        f'id="{inc.id}",status="open",summary="errors 9% \\"now\\"",detected=150i 100'
    )
    resolved = Incident("c", "errors", 100, 200, 7.5, 42, status="resolved", ended_ns=200)
    assert resolved.id == inc.id and len(inc.id) == 16  # identity: customer, kind, start
    assert ',status="resolved",' in incident_line(resolved) and incident_line(resolved).endswith(",ended=200i 100")
    assert write_mark_line("c", 3, 1, 2, 9) == "writes,customer_id=c,writer=3 min_time=1i,max_time=2i 9"
    assert write_mark_line("c", 3, 1, 2, 9, 512) == (
        "writes,customer_id=c,writer=3 min_time=1i,max_time=2i,backlog_bytes=512i 9"
    )


def test_request_batch_pickles_compactly_and_exactly() -> None:
    import pickle

    b = RequestBatch("c", [1, 2**62], ["/a", "/é b"], ["200", "503"], ["0.5", "12"])
    assert pickle.loads(pickle.dumps(b)) == b
    assert pickle.loads(pickle.dumps(RequestBatch("empty"))) == RequestBatch("empty")
