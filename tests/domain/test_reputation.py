from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitbc.domain.reputation import DEFAULT_HALF_LIFE, REPUTATION_MAX, REPUTATION_NEUTRAL, MinerStats

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def completed(stats: MinerStats, now: datetime) -> MinerStats:
    return stats.with_completion(now, tokens_per_second=40.0, ttft_seconds=0.2)


EVENTS: dict[str, Callable[[MinerStats, datetime], MinerStats]] = {
    "completion": completed,
    "failure": MinerStats.with_failure,
    "cancellation": MinerStats.with_cancellation,
    "lease_expiry": MinerStats.with_lease_expiry,
}
BAD_EVENTS = ("failure", "cancellation", "lease_expiry")


def replay(events: list[tuple[str, int]]) -> tuple[MinerStats, datetime]:
    stats, now = MinerStats(), T0
    for name, minutes in events:
        now += timedelta(minutes=minutes)
        stats = EVENTS[name](stats, now)
    return stats, now


histories = st.lists(st.tuples(st.sampled_from(sorted(EVENTS)), st.integers(0, 3 * 24 * 60)), max_size=30)


def test_a_new_miner_scores_exactly_neutral() -> None:
    assert MinerStats().score(T0) == REPUTATION_NEUTRAL == 5000
    assert MinerStats().decayed(T0) == MinerStats(updated_at=T0)


def test_documented_examples() -> None:
    stats = MinerStats()
    for _ in range(20):
        stats = completed(stats, T0)
    assert stats.score(T0) == 8333
    assert MinerStats().with_failure(T0).score(T0) == 4545
    assert MinerStats().with_lease_expiry(T0).score(T0) == 4167


def test_a_lease_expiry_weighs_more_than_a_failure() -> None:
    base = completed(completed(MinerStats(), T0), T0)
    assert base.with_lease_expiry(T0).score(T0) < base.with_failure(T0).score(T0)
    assert base.with_cancellation(T0).score(T0) == base.with_failure(T0).score(T0)


def test_counts_halve_every_half_life() -> None:
    stats = MinerStats().with_failure(T0).with_failure(T0)
    assert stats.decayed(T0 + DEFAULT_HALF_LIFE).failures == pytest.approx(1.0)
    assert stats.decayed(T0 + 2 * DAY, half_life=2 * DAY).failures == pytest.approx(1.0)
    assert stats.score(T0 + 100 * DEFAULT_HALF_LIFE) == REPUTATION_NEUTRAL


def test_a_clock_going_backwards_decays_nothing() -> None:
    stats = MinerStats().with_failure(T0)
    assert stats.decayed(T0 - DAY) == stats
    assert stats.with_failure(T0 - DAY).updated_at == T0


def test_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError, match="half_life"):
        MinerStats().score(T0, half_life=timedelta(0))


def test_speed_ewmas() -> None:
    stats = MinerStats().with_completion(T0, tokens_per_second=50.0, ttft_seconds=1.0)
    assert (stats.tokens_per_second, stats.ttft_seconds) == (50.0, 1.0)
    stats = stats.with_completion(T0, tokens_per_second=100.0, ttft_seconds=2.0)
    assert (stats.tokens_per_second, stats.ttft_seconds) == pytest.approx((60.0, 1.2))
    for unknown in (0.0, -1.0, float("nan"), float("inf")):
        assert stats.with_completion(T0, tokens_per_second=unknown, ttft_seconds=unknown).tokens_per_second == (
            stats.tokens_per_second
        )


def test_speed_stays_out_of_the_score() -> None:
    slow = MinerStats().with_completion(T0, tokens_per_second=1.0, ttft_seconds=9.0)
    fast = MinerStats().with_completion(T0, tokens_per_second=900.0, ttft_seconds=0.01)
    assert slow.score(T0) == fast.score(T0)


@settings(max_examples=60)
@given(histories, st.integers(0, 10 * 24 * 60))
def test_score_is_bounded(events: list[tuple[str, int]], later: int) -> None:
    stats, now = replay(events)
    assert 0 <= stats.score(now + timedelta(minutes=later)) <= REPUTATION_MAX


@settings(max_examples=60)
@given(histories, st.integers(0, 24 * 60))
def test_a_completion_never_lowers_and_a_bad_event_never_raises_the_score(
    events: list[tuple[str, int]], minutes: int
) -> None:
    stats, now = replay(events)
    now += timedelta(minutes=minutes)
    before = stats.score(now)
    assert completed(stats, now).score(now) >= before
    for name in BAD_EVENTS:
        assert EVENTS[name](stats, now).score(now) <= before


@settings(max_examples=60)
@given(histories, st.integers(0, 5 * 24 * 60), st.integers(0, 5 * 24 * 60))
def test_evidence_fades_toward_neutral(events: list[tuple[str, int]], first: int, more: int) -> None:
    stats, now = replay(events)
    sooner = stats.score(now + timedelta(minutes=first))
    later = stats.score(now + timedelta(minutes=first + more))
    assert abs(later - REPUTATION_NEUTRAL) <= abs(sooner - REPUTATION_NEUTRAL)
    assert (later - REPUTATION_NEUTRAL) * (sooner - REPUTATION_NEUTRAL) >= 0  # it approaches, never crosses
