"""Miner reputation: a 0-10000 score from the miner's track record, with old evidence fading.

The score is a smoothed success ratio scaled to 0..10000:

    bad   = 1 * failures + 1 * cancellations + 2 * lease_expiries
    score = round(10000 * (completions + 5) / (completions + bad + 10))

- The prior of 5 pseudo-successes and 5 pseudo-failures makes a new miner
  score exactly 5000 (`REPUTATION_NEUTRAL`) and lets it earn its way up:
  20 clean completions give 8333, 100 give 9545; a new miner whose first job
  fails drops to 4545, to 4167 if its lease expired instead.
- A lease expiry weighs twice a failure: the miner vanished holding the job,
  so the client waited a whole lease before the job moved on, whereas a
  reported failure requeues it at once. A cancellation counts only when the
  miner caused it (it did not acknowledge a cancel in time, holding the slot).
- Every count decays by half each `half_life` (default 24 hours) before an
  event is added or a score is read, so old evidence fades and the score
  drifts back toward 5000; a miner cannot bank a reputation forever.
- A completion never lowers the score, a bad event never raises it (the ratio
  is increasing in completions and decreasing in bad events), and the score
  stays strictly between 0 and 10000.

Speed (tokens/s and time to first token, as EWMAs) is recorded alongside but
kept out of the score: routing weighs speed separately, and a slow GPU that
never fails is reliable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

REPUTATION_MAX = 10_000
REPUTATION_NEUTRAL = 5_000
DEFAULT_HALF_LIFE = timedelta(hours=24)

PRIOR = 5.0
FAILURE_WEIGHT = 1.0
CANCELLATION_WEIGHT = 1.0
LEASE_EXPIRY_WEIGHT = 2.0
# Weight of the newest sample in the speed EWMAs: about the last 5 jobs dominate.
SPEED_SMOOTHING = 0.2
# How far `score_steady_until` errs early: in the ratio, and then in time.
_STEADY_EPSILON = 1e-9
_STEADY_MARGIN = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class MinerStats:
    """A miner's decayed event counts as of `updated_at` (None: no event yet), and its speed EWMAs."""

    completions: float = 0.0
    failures: float = 0.0
    # Cancellations the miner caused: it did not acknowledge a cancel in time.
    cancellations: float = 0.0
    lease_expiries: float = 0.0
    tokens_per_second: float = 0.0  # EWMA; 0 = unknown
    ttft_seconds: float = 0.0  # EWMA; 0 = unknown
    updated_at: datetime | None = None

    def decayed(self, now: datetime, half_life: timedelta = DEFAULT_HALF_LIFE) -> MinerStats:
        """The counts as of `now`: each halves per `half_life` elapsed since `updated_at`.

        A `now` before `updated_at` (clocks of two coordinator replicas) decays
        nothing and keeps the later time, so no interval is decayed twice.
        """
        if half_life <= timedelta(0):
            raise ValueError(f"half_life must be positive, got {half_life}")
        if self.updated_at is None:
            return replace(self, updated_at=now)
        if now <= self.updated_at:
            return self
        factor = 0.5 ** ((now - self.updated_at) / half_life)
        return replace(
            self,
            completions=self.completions * factor,
            failures=self.failures * factor,
            cancellations=self.cancellations * factor,
            lease_expiries=self.lease_expiries * factor,
            updated_at=now,
        )

    def with_completion(
        self,
        now: datetime,
        *,
        tokens_per_second: float,
        ttft_seconds: float,
        half_life: timedelta = DEFAULT_HALF_LIFE,
    ) -> MinerStats:
        """One more completed job; a speed sample that is not a positive number (unknown) leaves its EWMA as is."""
        stats = self.decayed(now, half_life)
        return replace(
            stats,
            completions=stats.completions + 1,
            tokens_per_second=ewma(stats.tokens_per_second, tokens_per_second),
            ttft_seconds=ewma(stats.ttft_seconds, ttft_seconds),
        )

    def with_failure(self, now: datetime, *, half_life: timedelta = DEFAULT_HALF_LIFE) -> MinerStats:
        stats = self.decayed(now, half_life)
        return replace(stats, failures=stats.failures + 1)

    def with_cancellation(self, now: datetime, *, half_life: timedelta = DEFAULT_HALF_LIFE) -> MinerStats:
        stats = self.decayed(now, half_life)
        return replace(stats, cancellations=stats.cancellations + 1)

    def with_lease_expiry(self, now: datetime, *, half_life: timedelta = DEFAULT_HALF_LIFE) -> MinerStats:
        stats = self.decayed(now, half_life)
        return replace(stats, lease_expiries=stats.lease_expiries + 1)

    def score(self, now: datetime, half_life: timedelta = DEFAULT_HALF_LIFE) -> int:
        """The reputation at `now` on the 0..10000 scale (formula in the module docstring)."""
        stats = self.decayed(now, half_life)
        bad = (
            FAILURE_WEIGHT * stats.failures
            + CANCELLATION_WEIGHT * stats.cancellations
            + LEASE_EXPIRY_WEIGHT * stats.lease_expiries
        )
        ratio = (stats.completions + PRIOR) / (stats.completions + bad + 2 * PRIOR)
        return round(REPUTATION_MAX * ratio)

    def score_steady_until(self, now: datetime, half_life: timedelta = DEFAULT_HALF_LIFE) -> datetime | None:
        """A moment, no later than the score's next change with no new event, before which `score` stays as at `now`.

        None: it never changes (no event yet, or as much good as bad evidence).
        Routing caches scores with this instead of recomputing every miner's
        for every job. Decay scales every count by the same factor g, so the
        ratio (c·g + P) / ((c + b)·g + 2P) moves monotonically toward 1/2 and
        crosses a given value r once, at g = P(2r - 1) / (c - r(c + b)); r is
        the next rounding boundary, pulled in by a hair so that floating-point
        error can only make the answer early.
        """
        if half_life <= timedelta(0):
            raise ValueError(f"half_life must be positive, got {half_life}")
        if self.updated_at is None:
            return None  # no decay is applied until an event sets updated_at
        good = self.completions
        bad = FAILURE_WEIGHT * self.failures + CANCELLATION_WEIGHT * self.cancellations
        bad += LEASE_EXPIRY_WEIGHT * self.lease_expiries
        if abs(good - bad) <= _STEADY_EPSILON * (good + bad + PRIOR):
            return None
        score = self.score(now, half_life)
        falling = good > bad
        edge = (score - 0.5 if falling else score + 0.5) / REPUTATION_MAX
        target = edge + _STEADY_EPSILON if falling else edge - _STEADY_EPSILON
        denominator = good - target * (good + bad)
        factor = PRIOR * (2 * target - 1) / denominator if denominator else 0.0
        if not factor > 0.0:
            return None  # the boundary lies beyond 1/2, which the ratio only approaches
        if factor >= 1.0:
            return now
        at = self.updated_at + half_life * -math.log2(factor) - _STEADY_MARGIN
        return max(at, now)


def ewma(current: float, sample: float) -> float:
    """An exponentially weighted moving average: the first sample is taken as it is, a non-positive one ignored."""
    if not (math.isfinite(sample) and sample > 0):
        return current
    if current <= 0:
        return sample
    return current + SPEED_SMOOTHING * (sample - current)
