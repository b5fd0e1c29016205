"""SLO figures: which target applies, the SLO window of a range, the budget.

The error budget of a target t (fraction, 0.995) is the share 1 − t of requests allowed to be server
errors (status ≥ 500; 4xx are the caller's) over the SLO window, the last `SLO_WINDOW_DAYS` local
days ending with a given day. `error_budget_remaining` = 1 − (5xx / requests in the window) / (1 − t):
1 = nothing spent, 0 = all spent, negative = overspent; 1 for a window without requests. It is
unknown (None) when any rollup point of the window was written before rollups counted 5xx (the
point lacks `server_errors`): a silent 0 there would overstate the budget left.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logpulse.config import Settings, parse_slo_targets, slo_target_of

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Slo:
    """The SLO settings the API needs: targets (fractions) and the window in days."""

    targets: tuple[tuple[str, float], ...] = ()
    window_days: int = 30

    @classmethod
    def from_settings(cls, s: Settings) -> Slo:
        return cls(tuple(parse_slo_targets(s.slo_targets).items()), s.slo_window_days)

    def target(self, customer: str) -> float | None:
        """The customer's availability target as a fraction (its own entry, else `default`), or None."""
        return slo_target_of(self.targets, customer)

    def first_day(self, last: dt.date) -> dt.date:
        """First local day of the SLO window that ends with (and includes) `last`."""
        return last - dt.timedelta(days=self.window_days - 1)


def budget_remaining(server_errors: float, requests: float, target: float) -> float:
    """1 − (server_errors / requests) / (1 − target); 1.0 without requests (nothing spent)."""
    if requests <= 0:
        return 1.0
    return 1.0 - (server_errors / requests) / (1.0 - target)


def trailing_budgets(
    requests: IntArray, server_errors: IntArray, unknown: IntArray, window_days: int, target: float
) -> list[float | None]:
    """Per day d ≥ window_days − 1 of the daily arrays, the budget left over days [d − window_days + 1, d].

    The arrays hold one entry per local day, the first `window_days − 1` of them only as history;
    `unknown` counts the day's rollup points without `server_errors` (any makes the budget None).
    """

    def window_sums(a: IntArray) -> IntArray:
        c = np.concatenate(([0], np.cumsum(a, dtype=np.int64)))
        return c[window_days:] - c[: len(c) - window_days]

    n, e, u = window_sums(requests), window_sums(server_errors), window_sums(unknown)
    return [None if int(u[i]) else budget_remaining(int(e[i]), int(n[i]), target) for i in range(len(n))]
