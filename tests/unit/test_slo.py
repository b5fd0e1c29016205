"""The SLO arithmetic of the API (api/slo.py): the README's worked example, trailing windows against
a direct sum per day, unknown days, and which target applies."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from logpulse.config import Settings
from logpulse.slo import Slo, budget_remaining, trailing_budgets


def test_the_readme_worked_example() -> None:
    # 99.5 %: 1,200,000 requests in 30 days, 1,500 of them 5xx -> 0.125 % of requests, a quarter of 0.5 %
    assert budget_remaining(1_500, 1_200_000, 0.995) == pytest.approx(0.75, rel=1e-12)
    assert budget_remaining(9_000, 1_200_000, 0.995) == pytest.approx(-0.5, rel=1e-12)  # overspent
    assert budget_remaining(0, 0, 0.995) == 1.0  # a window without requests spent nothing


def test_trailing_windows_equal_a_direct_sum_per_day() -> None:
    rng = random.Random(1)
    for _ in range(50):
        window = rng.randint(1, 9)
        days = window - 1 + rng.randint(1, 20)
        requests = np.asarray([rng.choice((0, rng.randint(1, 500))) for _ in range(days)], np.int64)
        errors = np.asarray([rng.randint(0, int(n)) if n else 0 for n in requests], np.int64)
        unknown = np.asarray([int(rng.random() < 0.05) for _ in range(days)], np.int64)
        got = trailing_budgets(requests, errors, unknown, window, 0.99)
        assert len(got) == days - window + 1
        for i, value in enumerate(got):
            span = slice(i, i + window)
            if unknown[span].any():
                assert value is None
            else:
                n, e = int(requests[span].sum()), int(errors[span].sum())
                assert value == pytest.approx(1.0 if n == 0 else 1 - (e / n) / 0.01, rel=1e-12)


def test_a_customers_own_target_else_default_else_none() -> None:
    slo = Slo.from_settings(Settings(_env_file=None, slo_targets="default=99.5,cust_7=99.9", slo_window_days=7))
    assert slo.target("cust_7") == pytest.approx(0.999)
    assert slo.target("cust_1") == pytest.approx(0.995)
    assert slo.first_day(dt.date(2026, 11, 25)) == dt.date(2026, 11, 19)  # 7 days including the 25th
    only = Slo.from_settings(Settings(_env_file=None, slo_targets="cust_7=99.9"))
    assert only.target("cust_1") is None
    assert Slo.from_settings(Settings(_env_file=None, slo_targets="")).target("cust_7") is None
