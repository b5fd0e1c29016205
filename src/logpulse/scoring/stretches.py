"""A learnt baseline (latency, errors) along a run of buckets, through its tracker's runs of hot buckets.

Where a run (`runs.run`) finds a bucket whose latency or error rate is "still hot" (half the opening
effect, `HOT_EVIDENCE` over the hot window) but no window opens an incident, the per-bucket path would
only start the tracker's run of hot buckets (`Tracker.run_start`) there. From then on, bucket by
bucket, that signal is tested at every bucket (empty ones too) against its baseline *as of before the
hot bucket*: the baseline does not learn while the run of hot buckets may still become an incident
(`Tracker.learns`). The run ends at the first bucket that is not hot, which the baseline learns, and
from which it follows its closed recurrence again.

All of that is computed here as arrays: a frozen baseline makes every bucket's tests of a hot stretch
independent of the others (one call for the stretch), and after it the closed form starts over
(`decayed_run` from the learnt bucket). The other signals do not read this baseline or this tracker,
so the rest of the run stands. Hot stretches are common (on the nginx fleet most runs meet a slow
minute): stopping at each would cost a new run and a stretch of per-bucket steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from logpulse.scoring.baselines import decayed_run

Gate = Callable[[np.ndarray, int, int], np.ndarray]
"""(the baseline's sums before each non-empty bucket of a segment (a column each), their index of the
first of them among the run's non-empty buckets, the baseline's `buckets` before the segment) ->
which of them the per-bucket path tests (its fast-path gate)."""

Tests = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(baseline sums per tested bucket (a column each, or one column for all), the buckets' offsets in
the run) -> (would an incident open, is the bucket still hot), per bucket."""


@dataclass(slots=True)
class _Segment:
    """The baseline learning every bucket from offset `k` on, in closed form."""

    k: int
    start: np.ndarray  # the sums before bucket k
    buckets: int  # the baseline's `buckets` before bucket k
    i0: int  # index of the first of the run's non-empty buckets at or after k
    acc: np.ndarray  # `decayed_run`'s scaled cumulative inputs of those buckets


@dataclass(slots=True)
class _Stretch:
    """A run of hot buckets from offset `h`: the baseline frozen as before it."""

    h: int
    state: np.ndarray
    buckets: int


class BaselinePath:
    """One learnt baseline's sums along a run: closed-form segments between hot stretches."""

    def __init__(
        self,
        keep: float,
        pos: np.ndarray,
        inputs: np.ndarray,
        first: _Segment | None = None,
        prior: np.ndarray | None = None,
    ) -> None:
        self.keep, self.pos, self.inputs = keep, pos, inputs
        self.parts: list[_Segment | _Stretch] = [] if first is None else [first]
        self.prior = prior if prior is not None else np.zeros((len(inputs), 0))

    @classmethod
    def of(
        cls,
        keep: float,
        pos: np.ndarray,
        inputs: np.ndarray,
        start: np.ndarray,
        buckets: int,
        prior: np.ndarray,
        acc: np.ndarray,
        hot_from: int | None = None,
    ) -> BaselinePath:
        """From the run's closed form (`decayed_run`'s `prior` and `acc` of these rows); `hot_from`: the
        offset (<= 0) of the tracker's run of hot buckets going on at the run's start, if any (the
        baseline, frozen since, is `start`)."""
        path = cls(keep, pos, inputs, _Segment(0, start, buckets, 0, acc), prior)
        if hot_from is not None:
            path.parts.append(_Stretch(hot_from, start, buckets))
        return path

    @property
    def brewing(self) -> bool:
        """Is the walk in a hot stretch (where it ended, or where the run starts)?"""
        return isinstance(self.parts[-1], _Stretch)

    def walk(self, stop: int, gate: Gate, tests: Tests, longest: int) -> int | None:
        """Follow the baseline through buckets 0..stop-1: the first bucket where an incident would open
        (the per-bucket path must take it), else None. A hot stretch still hot `longest` buckets on
        (`new_normal_buckets`: from there the baseline learns again while hot) also ends the walk
        there; 0 stops at every hot bucket."""
        pos = self.pos
        while True:
            part = self.parts[-1]
            if isinstance(part, _Segment):
                n = int(np.searchsorted(pos, stop)) - part.i0
                g = gate(self.prior[:, :n], part.i0, part.buckets).nonzero()[0] if n > 0 else _NONE
                if not len(g):
                    return None
                opens, hot = tests(self.prior[:, g], pos[part.i0 + g])
                hits = (opens | hot).nonzero()[0]
                if not len(hits):
                    return None
                first = int(g[hits[0]])
                h = int(pos[part.i0 + first])
                if opens[hits[0]] or not longest:
                    return h
                part = _Stretch(h, self.prior[:, first], part.buckets + first)
                self.parts.append(part)
            h, frozen, buckets = part.h, part.state, part.buckets
            end = min(stop, h + longest)
            j, size = max(h + 1, 0), STRETCH_BLOCK
            while True:  # blocks of buckets after h, growing: most stretches cool down within a few
                if j >= end:
                    return end if end < stop else None
                after = np.arange(j, min(end, j + size))
                opens, hot = tests(frozen[:, None], after)
                opened, cooled = opens.nonzero()[0], (~hot).nonzero()[0]
                if len(opened) and (not len(cooled) or opened[0] <= cooled[0]):
                    return int(after[opened[0]])
                if len(cooled):
                    break
                j, size = j + size, 2 * size
            cool = int(after[cooled[0]])
            # the first bucket not hot is learnt from the frozen baseline, then the closed form resumes
            i = int(np.searchsorted(pos, cool))
            learnt = i < len(pos) and int(pos[i]) == cool
            start = frozen * self.keep + (self.inputs[:, i] if learnt else 0.0)
            i += learnt
            self.prior, acc = decayed_run(start, pos[i:] - (cool + 1), self.inputs[:, i:], self.keep)
            self.parts.append(_Segment(cool + 1, start, buckets + learnt, i, acc))

    def state_at(self, stop: int) -> tuple[list[float], int, int | None]:
        """The baseline's sums and `buckets` once buckets 0..stop-1 are completed, and the offset of its
        tracker's run of hot buckets then (None: not hot)."""
        for part in reversed(self.parts):
            if isinstance(part, _Segment):
                if stop >= part.k:
                    done = int(np.searchsorted(self.pos, stop)) - part.i0
                    total = part.start + part.acc[:, done - 1] if done else part.start
                    sums: list[float] = (self.keep ** (stop - part.k) * total).tolist()
                    return sums, part.buckets + done, None
            elif stop > part.h:
                return part.state.tolist(), part.buckets, part.h
        raise AssertionError("a path starts with a segment at 0")


_NONE = np.zeros(0, dtype=np.int64)
STRETCH_BLOCK = 8
"""Buckets of a hot stretch tested in its first call (then twice as many per call): each bucket's
tests are independent of the others' (a frozen baseline), and a stretch of latency or errors mostly
cools down within a few buckets, so testing up to `new_normal_buckets` at once (60) was mostly waste."""
