"""Finished jobs written straight into a store's tables (SQLite or PostgreSQL): histories without running them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aitbc.store.base import Store
from aitbc.store.sqlite_rows import JOB_COLUMNS, micros, placeholders
from tests.support.stores import raw_write


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


async def insert_jobs(store: Store, jobs: Iterable[PastJob]) -> None:
    """Insert jobs (and the holds that charged them) into a migrated store, in one transaction."""
    statements: list[tuple[str, Sequence[Any]]] = [
        (
            "INSERT INTO accounts (account_id, address, created_at) VALUES ('payer', 'ait1payer', 0)"
            " ON CONFLICT DO NOTHING",
            (),
        )
    ]
    for job in jobs:
        created = micros(job.created_at)
        completed = micros(job.completed_at) if job.completed_at else None
        statements.append(
            (
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})",
                (
                    *(job.job_id, job.owner_id, job.state, job.prompt, job.model, 16, 0.7, 0.9, 0, "[]", "[]", 0),
                    *("", job.result, "", 1, job.prompt_tokens, job.completion_tokens, "", created, created),
                    *(created if completed else None, completed, 2, None, None, None, 0, 0, 0, "", None),
                ),
            )
        )
        if job.charge:
            statements.append(
                (
                    "INSERT INTO holds (job_id, account_id, amount, input_per_1k, output_per_1k, settled_attempt,"
                    " charge) VALUES (?, 'payer', ?, 0, 0, 1, ?)",
                    (job.job_id, job.charge, job.charge),
                )
            )
    await raw_write(store, statements)
