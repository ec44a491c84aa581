"""Finished jobs written straight into a store's SQLite file: histories of any size without running them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aitbc.store.sqlite_rows import JOB_COLUMNS, micros, placeholders


@dataclass(frozen=True, slots=True)
class PastJob:
    job_id: str
    owner_id: str
    state: str
    created_at: datetime
    completed_at: datetime | None = None
    prompt: str = "p"
    model: str = "tiny"
    result: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # µcr charged through the job's hold; 0 writes no hold.
    charge: int = 0


def insert_jobs(database: Path, jobs: Iterable[PastJob]) -> None:
    """Insert jobs (and the holds that charged them) into a migrated store file, in one transaction."""
    with sqlite3.connect(database) as db:
        db.execute("INSERT OR IGNORE INTO accounts (account_id, address, created_at) VALUES ('payer', 'ait1payer', 0)")
        for job in jobs:
            created = micros(job.created_at)
            completed = micros(job.completed_at) if job.completed_at else None
            db.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})",
                (
                    *(job.job_id, job.owner_id, job.state, job.prompt, job.model, 16, 0.7, 0.9, 0, "[]", "[]", 0),
                    *("", job.result, "", 1, job.prompt_tokens, job.completion_tokens, "", created, created),
                    *(created if completed else None, completed, 2, None, None, None, 0, 0, 0, "", None),
                ),
            )
            if job.charge:
                db.execute(
                    "INSERT INTO holds (job_id, account_id, amount, input_per_1k, output_per_1k, settled_attempt,"
                    " charge) VALUES (?, 'payer', ?, 0, 0, 1, ?)",
                    (job.job_id, job.charge, job.charge),
                )
