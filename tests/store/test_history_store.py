"""History queries, on SQLite and PostgreSQL: filters, keyset export pages, and stats computed with SQL aggregates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aitbc.domain.history import JobFilter
from aitbc.domain.states import JobState
from aitbc.store.base import Store
from aitbc.store.sqlite_rows import micros
from aitbc.store.urls import open_store
from tests.support.history_jobs import PastJob, insert_jobs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def store(store_target: Path | str) -> AsyncIterator[Store]:
    """A store of each kind (SQLite, PostgreSQL) holding a history."""
    opened = await open_store(store_target)
    # 20 completed jobs of owner "a" taking 1..20 s, a day apart; two failed, one canceled; one of "b".
    jobs = [
        PastJob(
            f"job_{n:03}",
            "a",
            "completed",
            T0 + timedelta(days=n),
            T0 + timedelta(days=n, seconds=n),
            prompt_tokens=10,
            completion_tokens=n,
            charge=1000,
        )
        for n in range(1, 21)
    ]
    jobs += [
        PastJob(f"job_f{n}", "a", "failed", T0 + timedelta(days=30 + n), T0 + timedelta(days=30 + n)) for n in (1, 2)
    ]
    jobs += [PastJob("job_c", "a", "canceled", T0 + timedelta(days=40), T0 + timedelta(days=40), completion_tokens=3)]
    jobs += [PastJob("job_other", "b", "completed", T0, T0 + timedelta(seconds=999), model="m", charge=77)]
    try:
        await insert_jobs(opened, jobs)
        yield opened
    finally:
        await opened.close()


async def test_stats_are_aggregates_over_the_filter(store: Store) -> None:
    try:
        stats = await store.job_stats(JobFilter(owner_id="a"))
        assert stats.counts == {JobState.COMPLETED: 20, JobState.FAILED: 2, JobState.CANCELED: 1}
        assert (stats.total_jobs, stats.finished_jobs) == (23, 23)
        assert stats.success_rate == pytest.approx(20 / 23)
        assert stats.mean_completion_seconds == pytest.approx(10.5)
        # Nearest rank: the 10th and the 19th of 20 sorted durations.
        assert (stats.p50_completion_seconds, stats.p95_completion_seconds) == (10.0, 19.0)
        assert (stats.prompt_tokens, stats.completion_tokens) == (200, 210 + 3)
        assert stats.total_spent == 20 * 1000
        # A period: days 5..9 (created_before is exclusive).
        window = JobFilter(owner_id="a", created_after=T0 + timedelta(days=5), created_before=T0 + timedelta(days=10))
        windowed = await store.job_stats(window)
        assert (windowed.total_jobs, windowed.p50_completion_seconds, windowed.total_spent) == (5, 7.0, 5000)
        empty = await store.job_stats(JobFilter(owner_id="nobody"))
        assert (empty.total_jobs, empty.success_rate, empty.p95_completion_seconds, empty.total_spent) == (0, 0, 0, 0)
        everyone = await store.job_stats(JobFilter())
        assert (everyone.total_jobs, everyone.total_spent) == (24, 20_077)
    finally:
        await store.close()


async def test_export_pages_are_keyset_pages(store: Store) -> None:
    try:
        job_filter = JobFilter(owner_id="a", state=JobState.COMPLETED)
        seen: list[str] = []
        after = None
        while page := await store.export_page(job_filter, after=after, limit=7):
            seen += [job.job_id for job, _ in page]
            assert all(cost == 1000 for _, cost in page)
            last = page[-1][0]
            after = (micros(last.created_at), last.job_id)
        assert seen == [f"job_{n:03}" for n in range(20, 0, -1)]
        by_model = await store.export_page(JobFilter(model="m"), after=None, limit=10)
        assert [(job.job_id, cost) for job, cost in by_model] == [("job_other", 77)]
    finally:
        await store.close()


async def test_list_filters_by_time_and_model(store: Store) -> None:
    try:
        page = await store.list_jobs(
            owner_id="a",
            state=None,
            limit=3,
            page_token="",
            created_after=T0 + timedelta(days=30),
            created_before=T0 + timedelta(days=41),
        )
        assert [job.job_id for job in page.jobs] == ["job_c", "job_f2", "job_f1"]
        assert page.next_page_token == ""
        other = await store.list_jobs(owner_id=None, state=None, limit=5, page_token="", model="m")
        assert [job.job_id for job in other.jobs] == ["job_other"]
    finally:
        await store.close()
