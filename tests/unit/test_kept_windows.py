"""The fleet tables kept per window (`fleet_tables.KeptWindows`) follow the `writes` marks as the day
replica does: a window is dropped by a newer mark that overlaps it, never by an older or a disjoint one;
a read that a mark may overlap while in flight is not kept; a restart mark or a gap in polling drops all."""

from __future__ import annotations

from logpulse.readmodel.fleet_tables import KeptWindows
from logpulse.storage import fleet_table
from logpulse.storage.marks import ANY_CUSTOMER
from logpulse.storage.points import ROLLUP_LEVELS

DAY = 86_400 * 10**9
HOUR = 3_600 * 10**9
NOW = 1_700_000_000 * 10**9
D1 = ROLLUP_LEVELS[2]  # rollups_1d
H1 = ROLLUP_LEVELS[1]
TABLE = fleet_table.decode_many([])


def kept_days(*starts: int, read_ns: int = NOW - 10**9) -> KeptWindows:
    kept = KeptWindows()
    kept.marks_polled(NOW - 2 * 10**9, [])
    for start in starts:
        kept.put(D1, start, TABLE, read_ns)
    return kept


def test_levels_are_what_the_test_means() -> None:
    assert (D1.window_ns, H1.window_ns) == (DAY, HOUR)


def test_a_newer_mark_drops_only_the_windows_it_overlaps() -> None:
    kept = kept_days(0, DAY, 2 * DAY)
    kept.put(H1, DAY + 5 * HOUR, TABLE, NOW - 10**9)
    kept.marks_polled(NOW, [("a", NOW - 10, DAY + 5 * HOUR, DAY + 5 * HOUR + 1)])
    assert kept.get(D1, DAY) is None and kept.get(H1, DAY + 5 * HOUR) is None
    assert kept.get(D1, 0) is TABLE and kept.get(D1, 2 * DAY) is TABLE


def test_a_mark_older_than_the_read_keeps_the_window() -> None:
    kept = kept_days(0, read_ns=NOW - 10**9)
    kept.marks_polled(NOW, [("a", NOW - 2 * 10**9, 5, 6)])  # written before the read started: included
    assert kept.get(D1, 0) is TABLE


def test_a_mark_spanning_many_windows_drops_each() -> None:
    kept = kept_days(*(d * DAY for d in range(30)))
    kept.marks_polled(NOW, [("a", NOW - 10, 3 * DAY + 1, 27 * DAY)])
    assert [d for d in range(30) if kept.get(D1, d * DAY) is None] == list(range(3, 28))


def test_a_read_overlapped_by_a_mark_applied_while_it_ran_is_not_kept() -> None:
    kept = kept_days()
    kept.marks_polled(NOW, [("a", NOW - 10, DAY + 1, DAY + 2)])
    kept.put(D1, DAY, TABLE, NOW - 20)  # started before the mark: may lack its data
    kept.put(D1, 0, TABLE, NOW - 20)  # another day: kept
    kept.put(D1, 2 * DAY, TABLE, NOW - 5)  # started after the mark: kept
    assert kept.get(D1, DAY) is None
    assert kept.get(D1, 0) is TABLE and kept.get(D1, 2 * DAY) is TABLE


def test_a_restart_mark_or_a_gap_in_polling_drops_everything() -> None:
    kept = kept_days(0, DAY)
    kept.marks_polled(NOW, [(ANY_CUSTOMER, NOW - 10, -(2**63), 2**63 - 1)])
    assert kept.get(D1, 0) is None and kept.get(D1, DAY) is None
    kept.put(D1, 0, TABLE, NOW + 10**9)
    kept.marks_polled(NOW + 60 * 10**9, [])  # a minute without a successful poll: marks may be lost
    assert kept.get(D1, 0) is None


def test_it_is_trusted_only_while_polls_succeed() -> None:
    kept = KeptWindows()
    assert not kept.trusted()
    kept.now_ns = lambda: NOW  # type: ignore[method-assign]
    kept.marks_polled(NOW - 10**9, [])
    assert kept.trusted()
    kept.now_ns = lambda: NOW + 60 * 10**9  # type: ignore[method-assign]
    assert not kept.trusted()
