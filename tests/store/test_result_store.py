"""The store's side of results: the migration that adds it, and what delete leaves."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aitbc.domain.retention import RETENTION, Plan
from aitbc.domain.states import JobState
from aitbc.store.migrations import MIGRATIONS
from aitbc.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Found by what it creates, not by number: migrations are renumbered when branches merge.
RESULTS_MIGRATION = next(index for index, script in enumerate(MIGRATIONS) if "result_checksums" in script)


def _insert_job(db: sqlite3.Connection, job_id: str, owner: str, state: str, completed_micros: int | None) -> None:
    db.execute(
        "INSERT INTO jobs (job_id, owner_id, state, prompt, model, max_tokens, temperature, top_p, stream,"
        " created_at, updated_at, completed_at, result) VALUES (?, ?, ?, 'secret', 'tiny', 8, 0.7, 0.9, 0, 0, 0, ?,"
        " 'output')",
        (job_id, owner, state, completed_micros),
    )


async def test_a_store_from_before_results_is_migrated_with_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:RESULTS_MIGRATION]):
            db.executescript(f"{script}; PRAGMA user_version = {number + 1};")
        _insert_job(db, "job_old", "owner", "completed", 1)
    store = await SqliteStore.open(path)
    try:
        job = await store.get_job("job_old")
        assert job is not None
        assert (job.result, job.result_deleted_at) == ("output", None)
        assert await store.account_plans() == {}
    finally:
        await store.close()


async def test_delete_clears_only_finished_jobs_and_the_sweep_query_follows_plans(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "aitbc.db")
    day = 86_400_000_000
    try:
        with sqlite3.connect(tmp_path / "aitbc.db") as db:
            _insert_job(db, "job_running", "free-owner", "running", None)
            _insert_job(db, "job_free", "free-owner", "completed", int(T0.timestamp() * 1_000_000))
            _insert_job(db, "job_pro", "pro-owner", "failed", int(T0.timestamp() * 1_000_000) + day)
        await store.set_account_plan("pro-owner", Plan.PRO, T0)
        assert await store.delete_result("job_running", T0) is None
        running = await store.get_job("job_running")
        assert running is not None
        assert (running.state, running.spec.prompt) == (JobState.RUNNING, "secret")

        assert await store.expired_results(T0 + timedelta(days=7), RETENTION, Plan.FREE, 10) == ["job_free"]
        assert await store.expired_results(T0 + timedelta(days=31), RETENTION, Plan.FREE, 10) == [
            "job_free",
            "job_pro",
        ]
        deleted = await store.delete_result("job_free", T0 + timedelta(days=7))
        assert deleted is not None
        assert (deleted.spec.prompt, deleted.result, deleted.result_deleted_at) == ("", "", T0 + timedelta(days=7))
        assert await store.expired_results(T0 + timedelta(days=31), RETENTION, Plan.FREE, 10) == ["job_pro"]
    finally:
        await store.close()
