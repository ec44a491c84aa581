"""Network totals over the jobs table, for the public stats: aggregates only, never a job's content."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from aitbc.store.base import JobTotals, JobWindow


async def read_job_totals(db: aiosqlite.Connection, since_micros: Sequence[int]) -> JobTotals:
    async with db.execute(
        "SELECT count(*), coalesce(sum(state = 'completed'), 0), coalesce(sum(completion_tokens), 0) FROM jobs"
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    windows = []
    for since in since_micros:
        # Served by the partial index jobs_by_completion: a window reads only the jobs it counts.
        async with db.execute(
            "SELECT count(*), coalesce(sum(completion_tokens), 0) FROM jobs"
            " WHERE state = 'completed' AND completed_at >= ?",
            (since,),
        ) as cursor:
            window = await cursor.fetchone()
        assert window is not None
        windows.append(JobWindow(int(window[0]), int(window[1])))
    return JobTotals(int(row[0]), int(row[1]), int(row[2]), tuple(windows))
