"""The tests behind each incident kind: how surprising a window of buckets is under the baseline.

Each function returns the *evidence* that a window differs from the customer's usual behaviour by at
least a minimum effect: `-log10(p)` of a one-sided test (6.0 means p = 1e-6), or 0 when the effect is
too small to matter whatever the p-value. Requiring both an effect size and a p-value is what keeps
busy customers (where tiny shifts are "significant") and quiet ones (where big shifts are noise) from
raising alarms.

* latency: z-test of the mean log-duration of the window (log-normal durations; the mean of >= 5
  logs is near normal even with heavy tails, because the log tames them).
* errors: exact binomial upper tail P(X >= failed | n, p0) — not a normal approximation, which
  fails exactly where few errors are expected.
* traffic_drop / traffic_surge: exact Poisson tails of the window's request count against the
  expected count (time-of-day aware, see `baselines.TrafficBaseline`).
* slo_burn: not a test but a policy (SRE workbook): burn rate = error rate / (1 - SLO target).

The special functions (`scipy.special`) are used directly: the `scipy.stats` wrappers cost ~100 µs
per call in argument checking, and these run per bucket. The `*_many` forms are the same tests on
arrays (one value per window), for the scorer's vectorised runs of quiet buckets; they use the same
ufuncs and formulas, so both forms decide alike. Their effect size may differ per window column (the
"still hot" window tests half the effect), so that a bucket's windows are tested in one call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np

from logpulse.model import INCIDENT_KINDS

KINDS = INCIDENT_KINDS
MAX_EVIDENCE = 300.0  # below 1e-300 a double underflows; "overwhelming" is enough
MIN_LATENCY_REQUESTS = 5
MIN_SURGE_REQUESTS = 10
_LN10 = math.log(10.0)


@functools.cache
def _special() -> ModuleType:
    """`scipy.special`, imported when a test first needs a tail probability: importing it clones all of
    numpy (`numpy.f2py`, `numpy.testing`, ...), ~0.3 s of CPU, which a process whose windows never
    pass an effect-size gate does not need to pay. The same ufuncs either way."""
    from scipy import special  # type: ignore[import-untyped]

    module: ModuleType = special
    return module


def _evidence(p: float) -> float:
    if p <= 0.0:
        return MAX_EVIDENCE
    return min(MAX_EVIDENCE, max(0.0, -math.log10(p)))


def latency_evidence(n: float, log_sum: float, mu: float, sigma: float, min_ratio: float) -> float:
    """Evidence that the window's typical (geometric-mean) latency is >= `min_ratio` x usual."""
    if n < MIN_LATENCY_REQUESTS:
        return 0.0
    shift = log_sum / n - mu
    if shift < math.log(min_ratio):
        return 0.0
    z = shift / (sigma / math.sqrt(n))
    return min(MAX_EVIDENCE, -float(_special().log_ndtr(-z)) / _LN10)


def error_evidence(n: float, failed: float, p_usual: float, p_test: float, min_increase: float) -> float:
    """Evidence that the failure rate is >= `p_usual` + `min_increase`: exact binomial tail
    P(X >= failed | n, p_test), where `p_test` >= p_usual is a cautious (upper) usual rate."""
    if n <= 0 or failed / n < p_usual + min_increase:
        return 0.0
    # P(X >= k) for X ~ Binomial(n, p) is the regularized incomplete beta I_p(k, n - k + 1)
    return _evidence(float(_special().betainc(failed, n - failed + 1, p_test)))


def drop_evidence(observed: float, expected: float, ratio: float) -> float:
    """Evidence that traffic fell to <= 1/`ratio` of the expected count: Poisson P(X <= observed)."""
    if expected <= 0 or observed > expected / ratio:
        return 0.0
    return _evidence(float(_special().pdtr(observed, expected)))


def surge_evidence(observed: float, expected: float, ratio: float) -> float:
    """Evidence that traffic rose to >= `ratio` x the expected count: Poisson P(X >= observed)."""
    if observed < MIN_SURGE_REQUESTS or observed < expected * ratio:
        return 0.0
    return _evidence(float(_special().pdtrc(observed - 1, max(expected, 1e-9))))


def burn_rate(n: float, errors: float, target: float) -> float:
    """How fast the error budget burns: 1.0 spends exactly the budget over the SLO window."""
    if n <= 0:
        return 0.0
    return (errors / n) / (1.0 - target)


def _evidence_many(p: np.ndarray) -> np.ndarray:
    ev: np.ndarray = np.minimum(MAX_EVIDENCE, np.maximum(0.0, -np.log10(np.maximum(p, 1e-320))))
    return ev


Ratios = float | Sequence[float]
"""A `*_many` test's effect size: one for every window, or one per window column (the last axis), so
that windows tested at different sizes of effect (the "still hot" one at half) go in one call."""


@functools.lru_cache(maxsize=64, typed=True)  # a process tests a few sets of windows: made once, shared read-only
def _per_column(value: Ratios, to: Callable[[float], float] = float) -> float | np.ndarray:
    if isinstance(value, float | int):
        return to(value)
    column = np.array([to(v) for v in value])
    column.flags.writeable = False
    return column


def latency_evidence_many(
    n: np.ndarray, log_sum: np.ndarray, mu: np.ndarray, sigma: np.ndarray, min_ratio: Ratios
) -> np.ndarray:
    """`latency_evidence` of many windows (arrays broadcast together; every n >= 1)."""
    shift = log_sum / n - mu
    ok = (n >= MIN_LATENCY_REQUESTS) & (shift >= _per_column(min_ratio, math.log))
    z = shift / (sigma / np.sqrt(n))
    out = np.zeros(z.shape)
    if ok.any():
        out[ok] = np.minimum(MAX_EVIDENCE, -_special().log_ndtr(-z[ok]) / _LN10)
    return out


def error_evidence_many(
    n: np.ndarray, failed: np.ndarray, p_usual: np.ndarray, p_test: np.ndarray, min_increase: Ratios
) -> np.ndarray:
    """`error_evidence` of many windows (`n` and `failed` of one shape, the rates broadcast to it;
    every n >= 1)."""
    ok = failed / n >= p_usual + _per_column(min_increase)
    out = np.zeros(n.shape)
    if ok.any():
        f = failed[ok]
        p = p_test if np.shape(p_test) == n.shape else p_test + np.zeros(n.shape)  # (x + 0.0: the same rates)
        out[ok] = _evidence_many(_special().betainc(f, n[ok] - f + 1, p[ok]))
    return out


def drop_evidence_many(observed: np.ndarray, expected: np.ndarray, ratio: Ratios) -> np.ndarray:
    """`drop_evidence` of many windows."""
    ok = (expected > 0) & (observed <= expected / _per_column(ratio))
    out = np.zeros(observed.shape)
    if ok.any():
        out[ok] = drop_tail(observed[ok], expected[ok])
    return out


def surge_evidence_many(observed: np.ndarray, expected: np.ndarray, ratio: Ratios) -> np.ndarray:
    """`surge_evidence` of many windows."""
    ok = (observed >= MIN_SURGE_REQUESTS) & (observed >= expected * _per_column(ratio))
    out = np.zeros(observed.shape)
    if ok.any():
        out[ok] = surge_tail(observed[ok], expected[ok])
    return out


def drop_tail(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """`drop_evidence`'s test where its effect is large enough (expected > 0): Poisson P(X <= observed)."""
    return _evidence_many(_special().pdtr(observed, expected))


def surge_tail(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """`surge_evidence`'s test where its effect is large enough: Poisson P(X >= observed)."""
    return _evidence_many(_special().pdtrc(observed - 1, np.maximum(expected, 1e-9)))


def describe(kind: str, observed: float, usual: float, requests: int) -> str:
    """The human summary of an incident from its measured and usual level.

    latency: geometric-mean seconds; errors: failure fraction; traffic: requests/s; slo_burn: burn rate.
    """
    if kind == "latency":
        ratio = f" (x{observed / usual:.1f})" if usual > 0 else ""
        return f"latency {observed:.3g} s vs {usual:.3g} s usual{ratio}; {requests:,} requests"
    if kind == "errors":
        return f"errors {observed:.1%} vs {usual:.1%} usual; {requests:,} requests"
    if kind == "traffic_drop":
        change = f"-{1 - observed / usual:.0%}" if usual > 0 else "down"
        return f"traffic {observed:.3g} req/s vs {usual:.3g} req/s expected ({change}); {requests:,} requests"
    if kind == "traffic_surge":
        change = f"x{observed / usual:.1f}" if usual > 0 else "up"
        return f"traffic {observed:.3g} req/s vs {usual:.3g} req/s expected ({change}); {requests:,} requests"
    if kind == "slo_burn":
        return f"error budget burning {observed:.1f}x (alert at {usual:.1f}x); {requests:,} requests"
    raise ValueError(f"unknown incident kind {kind!r}")
