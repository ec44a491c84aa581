"""Job history in SQLite: filtered keyset pages for exports, and stats as SQL aggregates.

A mixin of `SqliteStore` (it uses the store's thread), kept apart so that the store's module stays about
jobs' life and this one about looking back at them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aitbc.domain.history import JobFilter, JobStatsRecord, nearest_rank
from aitbc.domain.jobs import JobRecord
from aitbc.domain.states import JobState
from aitbc.store.sqlite_rows import JOB_COLUMNS, job_from_row, micros
from aitbc.store.sqlite_thread import SqliteThread

# What a completed job took, from submission to completion, in microseconds.
_COMPLETION_MICROS = "(completed_at - created_at)"


def filter_clauses(job_filter: JobFilter, after: tuple[int, str] | None = None) -> tuple[list[str], list[Any]]:
    """WHERE clauses (to AND together) and their arguments; `after` is a keyset cursor (created_at, job_id)."""
    clauses: list[str] = []
    args: list[Any] = []
    if job_filter.owner_id is not None:
        clauses.append("owner_id = ?")
        args.append(job_filter.owner_id)
    if job_filter.state is not None:
        clauses.append("state = ?")
        args.append(job_filter.state.value)
    if job_filter.model:
        clauses.append("model = ?")
        args.append(job_filter.model)
    if job_filter.created_after is not None:
        clauses.append("created_at >= ?")
        args.append(micros(job_filter.created_after))
    if job_filter.created_before is not None:
        clauses.append("created_at < ?")
        args.append(micros(job_filter.created_before))
    if after is not None:
        clauses.append("(created_at, job_id) < (?, ?)")
        args.extend(after)
    return clauses, args


def where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


class HistoryQueries:
    """`Store.export_page` and `Store.job_stats` for `SqliteStore`."""

    _thread: SqliteThread

    async def export_page(
        self, job_filter: JobFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[JobRecord, int]]:
        clauses, args = filter_clauses(job_filter, after)
        # The charge rides along from the job's hold (none: a free job, or one never charged).
        sql = (
            f"SELECT {JOB_COLUMNS}, (SELECT COALESCE(charge, 0) FROM holds WHERE holds.job_id = jobs.job_id) AS cost"
            f" FROM jobs {where(clauses)} ORDER BY created_at DESC, job_id DESC LIMIT ?"
        )

        def read(db: sqlite3.Connection) -> list[tuple[JobRecord, int]]:
            return [(job_from_row(row), int(row["cost"] or 0)) for row in db.execute(sql, (*args, limit)).fetchall()]

        return await self._thread.read(read)

    async def job_stats(self, job_filter: JobFilter) -> JobStatsRecord:
        clauses, args = filter_clauses(job_filter)
        counts_sql = (
            "SELECT state, COUNT(*) AS jobs, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            f" COALESCE(SUM(completion_tokens), 0) AS completion_tokens FROM jobs {where(clauses)} GROUP BY state"
        )
        spent_sql = (
            "SELECT COALESCE(SUM(charge), 0) FROM holds WHERE settled_attempt IS NOT NULL"
            f" AND job_id IN (SELECT job_id FROM jobs {where(clauses)})"
        )
        done = [*clauses, "state = 'completed'", "completed_at IS NOT NULL"]
        times_sql = f"SELECT COUNT(*), AVG({_COMPLETION_MICROS}) FROM jobs {where(done)}"
        # Percentiles by nearest rank: SQLite sorts the completed jobs' durations, Python never holds them.
        rank_sql = f"SELECT {_COMPLETION_MICROS} FROM jobs {where(done)} ORDER BY 1 LIMIT 1 OFFSET ?"

        def read(db: sqlite3.Connection) -> JobStatsRecord:
            rows = db.execute(counts_sql, args).fetchall()
            spent = db.execute(spent_sql, args).fetchone()
            times = db.execute(times_sql, args).fetchone()
            completed = int(times[0]) if times else 0
            percentiles = []
            for fraction in (0.5, 0.95):
                if not completed:
                    percentiles.append(0.0)
                    continue
                ranked = db.execute(rank_sql, (*args, nearest_rank(fraction, completed))).fetchone()
                percentiles.append(int(ranked[0]) / 1e6 if ranked else 0.0)
            return _stats(rows, spent, times, percentiles)

        return await self._thread.read(read)


def _stats(
    rows: list[sqlite3.Row], spent: sqlite3.Row | None, times: sqlite3.Row | None, percentiles: list[float]
) -> JobStatsRecord:
    return JobStatsRecord(
        counts={JobState(row["state"]): int(row["jobs"]) for row in rows},
        prompt_tokens=sum(int(row["prompt_tokens"]) for row in rows),
        completion_tokens=sum(int(row["completion_tokens"]) for row in rows),
        total_spent=int(spent[0]) if spent else 0,
        mean_completion_seconds=float(times[1]) / 1e6 if times and times[1] is not None else 0.0,
        p50_completion_seconds=percentiles[0],
        p95_completion_seconds=percentiles[1],
    )
