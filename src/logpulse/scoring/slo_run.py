"""The SLO burn signal along a run of buckets (`runs.run`), through its runs of "hot" buckets.

The per-bucket path (`per_bucket._slo`) tests a quiet customer's bucket only when it has 5xx; a rule
burning there (long and short windows at its rate and half of it) makes the bucket hot and starts the
tracker's run of hot buckets, and from then on every bucket is tested, empty ones too, until one is
not hot. The signal has no baseline: its tests read only the bucket counts, never the tracker or
another signal, so a whole hot stretch is tested in a few array calls and the run goes on through it
(only `Tracker.run_start` differs at its end). An incident opens where a rule fires (the short window
at the full rate, and the long window's errors evidence of it): there the run stops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from logpulse.scoring.signals import error_evidence_many
from logpulse.scoring.state import HOT_EVIDENCE, SLO_MIN_REQUESTS, ScorerState

CountsAt = Callable[[np.ndarray], np.ndarray]
"""Cumulative (requests, 5xx) at row numbers."""

BLOCK = 64  # buckets of a hot stretch tested per call (most cool down within an hour: 120 buckets)


def slo_tests(
    s: ScorerState, counts_at: CountsAt, mine: np.ndarray, ks: np.ndarray, target: float
) -> tuple[np.ndarray, np.ndarray]:
    """The per-bucket SLO signal at these buckets (row numbers `mine`, bucket indexes `ks`): would an
    incident open (a rule fires), is a rule burning (the "hot" condition)?"""
    long_w, short_limit, limit, p_limit = _rules(s.windows.slo, target)
    # every rule's windows in one look-up: the buckets themselves, then (long, short) start rows per rule
    back = _backs(s.windows.slo)
    counts = counts_at(np.maximum(mine[None, :] - back[:, None], 0).ravel()).reshape(len(back), len(mine), 2)
    sums = counts[0] - counts[1:]  # (requests, 5xx) per window: long and short of each rule, alternating
    long_n, long_e, short_n, short_e = sums[0::2, :, 0], sums[0::2, :, 1], sums[1::2, :, 0], sums[1::2, :, 1]
    history = ks - (s.first_bucket or 0) + 1
    counted = (history >= long_w) & (long_n >= SLO_MIN_REQUESTS) & (short_n > 0)
    # the rates of windows not `counted` do not matter: a request stands in for none (no division by 0)
    short_rate = (short_e / np.maximum(short_n, 1.0)) / (1.0 - target)
    burning = counted & ((long_e / np.maximum(long_n, 1.0)) / (1.0 - target) >= limit) & (short_rate >= short_limit)
    hot: np.ndarray = burning.any(axis=0)
    opens = np.zeros(len(mine), dtype=bool)
    r, c = (burning & (short_rate >= limit)).nonzero()
    if len(r):  # opening also needs evidence (p <= 0.01) that the long window's true rate burns at the limit
        p = p_limit[r, 0]
        sure = error_evidence_many(long_n[r, c], long_e[r, c], p, p, 0.0) >= HOT_EVIDENCE
        opens[c[sure]] = True
    return opens, hot


@functools.lru_cache(maxsize=16)
def _rules(slo: tuple[tuple[int, int, float], ...], target: float) -> tuple[np.ndarray, ...]:
    """Columns of the rules (a row each): long window, half the burn rate, the rate, and the failure
    rate at that burn (`per_bucket._slo`'s `p_limit`). Read-only, shared."""
    rules = np.array(slo)
    limit = rules[:, 2:]
    columns = (rules[:, :1], limit / 2, limit, np.minimum(1.0, limit * (1.0 - target)))
    for column in columns:
        column.flags.writeable = False
    return columns


@functools.lru_cache(maxsize=16)
def _backs(slo: tuple[tuple[int, int, float], ...]) -> np.ndarray:
    """How far back each window of `slo_tests`' one look-up starts: 0 (the bucket), then long and short per rule."""
    back = np.array([0, *(w for rule in slo for w in rule[:2])], dtype=np.int64)
    back.flags.writeable = False
    return back


Stretch = tuple[int, int | None]
"""A run of hot buckets in a run: its first bucket and the first after it that is not hot (None: hot
up to where the walk ended), offsets."""


def _first_hot(
    tests: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], server_errors: np.ndarray, cursor: int, stop: int
) -> tuple[int, int]:
    """The first bucket with 5xx from `cursor` on that is hot: (it, the bucket after it); (it, -1) when
    an incident opens there, (-1, -1) when there is none."""
    g = server_errors[(server_errors >= cursor) & (server_errors < stop)]
    if not len(g):
        return -1, -1
    opens, hot = tests(g)
    hits = (opens | hot).nonzero()[0]
    if not len(hits):
        return -1, -1
    h = int(g[hits[0]])
    return (h, -1) if opens[hits[0]] else (h, h + 1)


def hot_at(stretches: list[Stretch], stop: int) -> int | None:
    """The first bucket of the run of hot buckets going on once buckets 0..stop-1 are completed."""
    for first, cool in stretches:
        if first < stop and (cool is None or stop <= cool):
            return first
    return None


def slo_walk(
    s: ScorerState,
    counts_at: CountsAt,
    t0: int,
    k0: int,
    server_errors: np.ndarray,
    stop: int,
    target: float,
    hot_from: int | None = None,
) -> tuple[int | None, list[Stretch]]:
    """Follow the SLO signal through buckets 0..stop-1 of a run (offsets; `server_errors`: those with
    5xx; `hot_from`: the offset (<= 0) of a run of hot buckets going on at the start): the first
    bucket where an incident would open (None: none), and the hot stretches met."""
    stretches: list[Stretch] = []

    def tests(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return slo_tests(s, counts_at, offsets + t0, offsets + k0, target)

    cursor = 0
    while True:
        if hot_from is not None:
            h, j, hot_from = hot_from, 0, None
        else:
            h, j = _first_hot(tests, server_errors, cursor, stop)
            if j < 0:
                return (h if h >= 0 else None), stretches
        while True:  # the hot stretch from h: every bucket tested, until one is not hot
            if j >= stop:
                stretches.append((h, None))
                return None, stretches
            block = np.arange(j, min(stop, j + BLOCK))
            opens, hot = tests(block)
            opened, cooled = opens.nonzero()[0], (~hot).nonzero()[0]
            if len(opened) and (not len(cooled) or opened[0] < cooled[0]):  # (opening implies hot)
                stretches.append((h, None))
                return int(block[opened[0]]), stretches
            if len(cooled):
                cool = int(block[cooled[0]])
                stretches.append((h, cool))
                cursor = cool + 1
                break
            j = int(block[-1]) + 1
