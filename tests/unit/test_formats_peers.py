"""Other parsers' test lines (tests/unit/data/peer_cases.py): logpulse stores what the peer read.

Each line is parsed alone (check-format), and twice in one chunk (the first time by the per-line
path, the second by the fast path): all three must store the peer's time, status, path, duration
and customer, or refuse the line the peer refuses."""

from __future__ import annotations

import pytest

from logpulse.formats.registry import FormatError, FormatOptions, build_parser, customer_id
from logpulse.model import Chunk
from unit.data.peer_cases import CASES, REFUSED_AT_START, Case

KEY = "peer"


def options(case: Case) -> FormatOptions:
    setting = {"nginx": "nginx_log_format", "apache": "apache_log_format", "json": "json_fields"}[case.kind]
    opts: dict[str, object] = {setting: case.fmt, "customer_hash_key": KEY, **case.opts}
    if "nginx_custom_variables" in opts:
        opts["nginx_custom_variables"] = tuple(str(opts["nginx_custom_variables"]).split(","))
    return FormatOptions(log_format=case.kind, **opts)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.kind}" for i, c in enumerate(CASES)])
def test_peer_case(case: Case) -> None:
    if case.want == REFUSED_AT_START:
        with pytest.raises(FormatError):
            build_parser(options(case))
        return
    parser = build_parser(options(case))
    record = parser.parse_line(case.line)
    parsed = parser.parse_chunk(Chunk("peer.log", 1, 0, (case.line + "\n" + case.line + "\n").encode()))
    if case.want is None:
        assert record.stored is None, record
        assert len(parsed.rejects) == 2 and not parsed.batches
        return
    assert not isinstance(case.want, str)
    want = case.want
    stored = record.stored
    assert stored is not None, record.reason
    expected = (want.time, want.status, want.path, want.duration, customer_id(want.customer, KEY))
    assert (stored.time[:19], stored.status, stored.path, stored.duration_s, stored.customer_id) == expected
    assert not parsed.rejects, parsed.rejects
    [(customer, batch)] = parsed.batches.items()
    assert customer == expected[4]
    assert batch.paths == [want.path] * 2 and batch.statuses == [want.status] * 2
    assert batch.durations == [want.duration] * 2


def test_enough_peer_cases() -> None:
    """The count docs/log-formats.md states."""
    assert len(CASES) >= 150
