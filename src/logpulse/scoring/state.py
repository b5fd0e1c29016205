"""What a customer's scorer keeps between batches (the Bytewax `score` step's state, in recovery
snapshots), the window sizes derived from the config, and the forms of the bucket history: full rows
for the last `depth` buckets (a deque for the per-bucket path, numpy for runs) and, for the SLO
rules' windows of up to 6 h, only the (requests, 5xx) sums where they changed (`CountSteps`) — what a
customer did not send costs no history.

The per-bucket path (`per_bucket.py`) and the runs of buckets as arrays (`runs.py`) both read and
update this state; `scorer.CustomerScorer` decides which of them completes which buckets.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

from logpulse.scoring.baselines import ErrorBaseline, LatencyBaseline, ScoringConfig, TrafficBaseline
from logpulse.scoring.history import COLUMNS, CountSteps, History
from logpulse.scoring.incidents import Tracker
from logpulse.scoring.signals import KINDS

NS = 1_000_000_000
LATENCY_WINDOWS_S = (30, 60, 120, 300, 600)
TRAFFIC_WINDOWS_S = (60, 120, 300, 600, 1800)
HOT_WINDOW_S = 120  # "is the effect still there": half the opening effect at p <= 0.01 over 2 min
HOT_EVIDENCE = 2.0
RELEARN_S = 600  # a new normal is re-learnt from its last 10 minutes
BASELINE_S = 3600.0  # time constant of the latency and error baselines
SLO_RULES = ((3600, 300, 14.4), (21600, 1800, 6.0))
"""SRE workbook pages: (long window s, short window s, burn rate) — 2% of a 30-day budget in 1 h,
5% in 6 h; both windows must burn, so the alert ends soon after the burning stops."""
SLO_MIN_REQUESTS = 50  # in the long window: a handful of requests is no evidence of burning
HISTORY_S = 21600  # the longest window (6 h)
MIN_EXPECTED_FOR_DROP = HOT_EVIDENCE * math.log(10)  # below, even silence is not evidence (p(0) = e^-E)
MIN_SURGE_BUCKET = 2  # a surge needs more than one request in a bucket
SHORT_ROWS = 64  # rows `cum` gets after a run: more than any window but `window`'s (SLO, relearn)
IDLE_S = HISTORY_S  # a customer silent this long with nothing open is skipped in one step
NO_KEYS = np.zeros(0, dtype=np.int64)
NO_SUMS = np.zeros((5, 0))
"""No pending buckets: shared by every customer with none (read-only; an array costs ~100 B even
empty, and an empty slice of the last pending buckets would keep their buffer alive)."""
NO_KEYS.flags.writeable = NO_SUMS.flags.writeable = False


@dataclass(frozen=True, slots=True)
class Windows:
    """Window sizes in buckets and thresholds derived from the config: not in snapshots (a restart
    with other settings uses the new ones). Immutable, so customers of one config and SLO target share
    one (`of`): ~0.8 KB a customer otherwise."""

    keep: int  # HISTORY_S in buckets, + 1: how far back a first batch is judged, and a silence skipped at once
    depth: int  # full history rows kept: the longest window but the SLO's (`CountSteps`), + the zero row
    latency: tuple[int, ...]
    traffic: tuple[int, ...]
    hot: int
    relearn: int
    slo: tuple[tuple[int, int, float], ...]
    slo_target: float | None
    decay: float  # per bucket, of the latency and error baselines
    half_ln_ratio: float  # ln of the square root of the latency ratio: a bucket worth testing
    half_factor: float  # square root of the traffic factor
    keep_level: float  # per bucket, of the traffic level once steady
    per_slot: int  # buckets per quarter-hour of the traffic profile (1: unaligned, bucket by bucket)

    @classmethod
    def of(cls, config: ScoringConfig, customer_id: str) -> Windows:
        return _windows(config, config.slo_target(customer_id))


@functools.lru_cache(maxsize=64)  # a process has one config; SLO targets are few
def _windows(config: ScoringConfig, slo_target: float | None) -> Windows:
    b = config.buckets
    return Windows(
        keep=b(IDLE_S) + 1,
        depth=max(b(s) for s in (*LATENCY_WINDOWS_S, *TRAFFIC_WINDOWS_S, HOT_WINDOW_S, RELEARN_S)) + 1,
        latency=tuple(sorted({b(s) for s in LATENCY_WINDOWS_S})),
        traffic=tuple(sorted({b(s) for s in TRAFFIC_WINDOWS_S})),
        hot=b(HOT_WINDOW_S),
        relearn=b(RELEARN_S),
        slo=tuple((b(a), b(s), r) for a, s, r in SLO_RULES),
        slo_target=slo_target,
        decay=config.bucket_s / BASELINE_S,
        half_ln_ratio=0.5 * math.log(config.latency_ratio),
        half_factor=math.sqrt(config.traffic_factor),
        keep_level=1.0 - config.bucket_s / TrafficBaseline.LEVEL_S,
        per_slot=round(900 / config.bucket_s) if 900 % config.bucket_s == 0 else 1,
    )


@dataclass
class ScorerState:
    """One customer's scoring state."""

    customer_id: str
    config: ScoringConfig
    latency: LatencyBaseline = field(default_factory=LatencyBaseline)
    errors: ErrorBaseline = field(default_factory=ErrorBaseline)
    traffic: TrafficBaseline = field(default_factory=TrafficBaseline)
    watermark: int = -1  # highest bucket index seen (data or clock)
    next_bucket: int | None = None  # first bucket not completed yet
    # buckets not completed yet: sorted bucket indexes and their sums (requests, ln d, ln² d, failed, 5xx)
    pending_keys: np.ndarray = field(default_factory=lambda: NO_KEYS)
    pending: np.ndarray = field(default_factory=lambda: NO_SUMS)
    trackers: dict[str, Tracker] = field(default_factory=dict)
    idle: int = 0  # consecutive empty buckets
    silent_from: int = 0  # first bucket at which the silence since the last request could be a drop
    first_bucket: int | None = None  # the first bucket judged (the start of this customer's history)
    # cumulative (n, log_sum, log_sq, failed, server_errors) after each completed bucket, and beside it
    # the cumulative expected requests, for the per-bucket path; `hist` holds the same rows (six columns)
    # for runs (see `history.py`). Counts and expectation are kept apart because silence changes only
    # the expectation: an empty bucket's count row is the previous row itself (no new object), so a
    # quiet customer's gaps cost one float per bucket.
    cum: deque[tuple[float, ...]] = field(default_factory=deque)
    cum_expected: deque[float] = field(default_factory=deque)
    cum_total: int = 1  # rows ever appended to `cum`
    cum_from: int = 0  # the oldest row `cum` holds up to date (older ones are read from `hist`)
    vectorised: bool = True
    changed: bool = True  # since the last recovery snapshot (`scoring.step`): anything but the watermark

    def __post_init__(self) -> None:
        cfg = self.config
        bucket_ns = int(cfg.bucket_s * NS)
        self.traffic.bucket_s = cfg.bucket_s
        self.windows = Windows.of(cfg, self.customer_id)
        depth = self.windows.depth
        self.cum = deque([(0, 0.0, 0.0, 0, 0)], maxlen=depth)
        self.cum_expected = deque([0.0], maxlen=depth)
        self.hist = History(depth)
        self.steps = CountSteps(max(b for rule in self.windows.slo for b in rule[:2]))
        quiet, new_normal = cfg.buckets(cfg.quiet_s), cfg.buckets(cfg.new_normal_s) if cfg.new_normal_s else 0
        for kind in KINDS:
            if kind == "slo_burn":
                self.trackers[kind] = Tracker(self.customer_id, kind, bucket_ns, quiet, 0)
            else:
                self.trackers[kind] = Tracker(self.customer_id, kind, bucket_ns, quiet, new_normal)

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots hold the bucket history once (as numpy rows); `cum` is rebuilt from it."""
        self.rows_to_numpy()
        state = dict(self.__dict__)
        del state["windows"], state["cum_expected"]  # the pickled layout has one `cum`, rebuilt on restore
        state["cum"] = deque(maxlen=self.windows.depth)
        state["cum_total"] = self.hist.total - min(self.hist.total, self.windows.depth)
        state["cum_from"] = 0
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots of the per-bucket-only layout (a deque `cum`, a dict `open_buckets`) still
        restore; derived values pickled by earlier layouts (`_keep`, `_decay`, ...) are recomputed."""
        self.__dict__.update({k: v for k, v in state.items() if not k.startswith("_")})
        if "hist" not in state:
            self.hist = History(self.cum.maxlen or 1)
            self.hist.extend(np.array(self.cum, dtype=np.float64), len(self.cum) - 1)
            self.cum_total = self.hist.total
        rows = self.cum  # six columns in every pickled layout (empty but for the per-bucket-only one)
        self.cum = deque((r[:5] for r in rows), maxlen=rows.maxlen)
        self.cum_expected = deque((r[5] for r in rows), maxlen=rows.maxlen)
        if "open_buckets" in state:
            old = sorted(state["open_buckets"].items())
            self.pending_keys = np.array([k for k, _ in old], dtype=np.int64)
            self.pending = np.array(
                [[b.n, b.log_sum, b.log_sq, b.failed, b.server_errors] for _, b in old], dtype=np.float64
            ).T.reshape(5, len(old))
            self.__dict__.pop("open_buckets", None)
        self.__dict__.setdefault("vectorised", True)
        self.windows = Windows.of(self.config, self.customer_id)
        if "steps" not in state:
            self.steps = CountSteps.of(self.hist, max(b for rule in self.windows.slo for b in rule[:2]))
        depth = self.windows.depth
        if self.hist.keep != depth:  # snapshots kept 6 h for every customer, or the SLO target changed
            if self.hist.keep < depth and self.first_bucket is not None and self.next_bucket is not None:
                # rows older than those kept are unknown: the SLO's long windows wait for a full history
                self.first_bucket = max(self.first_bucket, self.next_bucket - self.hist.keep + 1)
            self.hist = self.hist.resized(depth)
            self.cum, self.cum_expected = deque(maxlen=depth), deque(maxlen=depth)  # rebuilt from `hist`
            self.cum_total, self.cum_from = self.hist.total - min(self.hist.total, depth), 0

    def quiet(self) -> bool:
        """No incident open or brewing (a run of hot buckets) of any kind."""
        for t in self.trackers.values():  # noqa: SIM110 (asked on every tick: a plain loop is 2x cheaper)
            if t.current is not None or t.run_start is not None:
                return False
        return True

    def steady(self) -> bool:
        """The traffic level's weight is constant (past its warm-up): empty runs have a closed form."""
        return self.traffic.buckets * self.config.bucket_s >= TrafficBaseline.LEVEL_S

    def window(self, w: int) -> tuple[float, ...]:
        """Sums over the last w completed buckets (the five counts, then the expected requests)."""
        cum, expected = self.cum, self.cum_expected
        a = (*cum[-1], expected[-1])
        row = max(self.cum_total - 1 - w, 0)
        # a row older than those converted after the last run (see `rows_to_deque`) is read from `hist`
        if row < self.cum_from:
            b = self.hist.row(row)
        else:
            i = -1 - w if len(cum) > w else 0
            b = (*cum[i], expected[i])
        return a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4], a[5] - b[5]

    def counts(self, w: int) -> tuple[float, float]:
        """(requests, 5xx) over the last w completed buckets (any window up to the SLO's longest)."""
        last = self.cum[-1]
        requests, errors = self.steps.at_one(max(self.cum_total - 1 - w, 0))
        return last[0] - requests, last[4] - errors

    def rows_to_deque(self) -> None:
        """Bring `cum` up to date with rows appended by runs: the newest `SHORT_ROWS` at most (every
        window but the SLO's long ones, which `window` reads from `hist`); converting all 6 h of rows
        after every run that stops would cost more than the run."""
        behind = self.hist.total - self.cum_total
        short = min(SHORT_ROWS, self.windows.depth)
        if behind > 0:
            if behind > short:  # what `cum` held is older than the run: of no use (and memory)
                behind = short
                self.cum_from = self.hist.total - short
                self.cum.clear()
                self.cum_expected.clear()
            *counts, expected = self.hist.tail(behind).T.tolist()
            self.cum.extend(zip(*counts, strict=True))
            self.cum_expected.extend(expected)
            self.cum_total = self.hist.total

    def rows_to_numpy(self) -> None:
        """Bring `hist` up to date with rows appended one by one."""
        behind = self.cum_total - self.hist.total
        if behind > 0:
            held = min(behind, len(self.cum))
            rows = np.empty((held, COLUMNS))
            rows[:, :5] = list(islice(self.cum, len(self.cum) - held, None))
            rows[:, 5] = list(islice(self.cum_expected, len(self.cum) - held, None))
            self.hist.extend(rows, behind)
