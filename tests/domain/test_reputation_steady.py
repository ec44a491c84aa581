"""`MinerStats.score_steady_until`: the score cannot change before it, and does soon after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from aitbc.domain.reputation import MinerStats

START = datetime(2026, 1, 1, tzinfo=UTC)
counts = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 5.0, 100.0]), st.floats(0, 1000))


@settings(max_examples=400, deadline=None)
@given(counts, counts, counts, counts, st.floats(0, 30 * 86400), st.floats(0, 1))
def test_the_score_holds_until_the_moment_it_names(
    completions: float, failures: float, cancellations: float, expiries: float, after: float, within: float
) -> None:
    stats = MinerStats(completions, failures, cancellations, expiries, updated_at=START)
    now = START + timedelta(seconds=after)
    score = stats.score(now)
    until = stats.score_steady_until(now)
    if until is None:
        for years in (1, 10):
            assert stats.score(now + timedelta(days=365 * years)) == score
        return
    assert until >= now
    assert stats.score(now + (until - now) * within) == score
    assert stats.score(max(now, until - timedelta(microseconds=1))) == score


def test_no_evidence_or_balanced_evidence_never_changes() -> None:
    assert MinerStats().score_steady_until(START) is None
    assert MinerStats(completions=3, failures=3, updated_at=START).score_steady_until(START) is None


def test_a_good_record_fades_one_point_at_a_time() -> None:
    stats = MinerStats(completions=100, updated_at=START)
    until = stats.score_steady_until(START)
    assert until is not None
    assert START < until < START + timedelta(hours=1)
    assert stats.score(until + timedelta(seconds=1)) == stats.score(START) - 1
