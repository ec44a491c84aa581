"""Jobs and their events in SQLite: plain functions of the connection, each run whole on the store's thread.

Write functions run inside the transaction `SqliteThread.write` opened, so a job commits with its first
event and its hold, and a transition with its event and its settlement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from aitbc.domain.events import JobEvent
from aitbc.domain.history import JobFilter
from aitbc.domain.jobs import JobRecord
from aitbc.domain.states import JobState
from aitbc.store import sqlite_ledger
from aitbc.store.base import HoldRequest, JobChanges, JobMovedOnError, JobPage, SettleRequest
from aitbc.store.sqlite_history import filter_clauses, where
from aitbc.store.sqlite_rows import (
    EVENT_COLUMNS,
    JOB_COLUMNS,
    UNFINISHED_EVENTS,
    UNFINISHED_JOBS,
    decode_page_token,
    encode_page_token,
    event_from_row,
    event_row,
    events_by_job,
    job_from_row,
    job_row,
    micros,
    placeholders,
)

_INSERT_EVENT = f"INSERT INTO job_events ({EVENT_COLUMNS}) VALUES ({placeholders(EVENT_COLUMNS)})"
_INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})"


def insert_events(db: sqlite3.Connection, events: Sequence[JobEvent]) -> None:
    db.executemany(_INSERT_EVENT, [event_row(event) for event in events])


# Output is stored only while its attempt is on a miner: the `Store` contract, which several coordinators on one
# PostgreSQL database rely on for fencing; one process on SQLite never breaks it (memory fences first).
_INSERT_OUTPUT = (
    f"INSERT INTO job_events ({EVENT_COLUMNS}) SELECT {placeholders(EVENT_COLUMNS)}"
    " WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ? AND attempt = ? AND state IN ('assigned', 'running'))"
    " ON CONFLICT (job_id, seq) DO NOTHING"
)


def insert_output(db: sqlite3.Connection, events: Sequence[JobEvent]) -> None:
    for event in events:
        if db.execute(_INSERT_OUTPUT, (*event_row(event), event.job_id, event.attempt)).rowcount != 1:
            raise JobMovedOnError(f"job {event.job_id} is no longer on attempt {event.attempt}")


_INSERT_NEXT_EVENT = f"{_INSERT_EVENT} ON CONFLICT (job_id, seq) DO NOTHING"


class LostRace(Exception):
    """Raised to roll a transition's savepoint back: it lost to a change its caller had not seen."""


def create_job(db: sqlite3.Connection, job: JobRecord, first_event: JobEvent, hold: HoldRequest | None) -> JobRecord:
    """Store the job, its first event and its hold; the job already stored under its idempotency key, if any."""
    key = job.spec.idempotency_key or None
    existing = find_by_idempotency_key(db, job.owner_id, key) if key is not None else None
    if existing is not None:
        return existing
    db.execute(_INSERT_JOB, job_row(job))
    insert_events(db, [first_event])
    if hold is not None:
        sqlite_ledger.place_hold(db, job.job_id, hold, job.created_at)
    return job


def get_job(db: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else job_from_row(row)


def find_by_idempotency_key(db: sqlite3.Connection, owner_id: str, key: str) -> JobRecord | None:
    sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner_id = ? AND idempotency_key = ?"
    row = db.execute(sql, (owner_id, key)).fetchone()
    return None if row is None else job_from_row(row)


def list_jobs(db: sqlite3.Connection, job_filter: JobFilter, limit: int, page_token: str) -> JobPage:
    clauses, args = filter_clauses(job_filter, decode_page_token(page_token) if page_token else None)
    # One extra row tells whether another page exists.
    sql = f"SELECT {JOB_COLUMNS} FROM jobs {where(clauses)} ORDER BY created_at DESC, job_id DESC LIMIT ?"
    rows = db.execute(sql, (*args, limit + 1)).fetchall()
    jobs = [job_from_row(row) for row in rows[:limit]]
    next_token = encode_page_token(jobs[-1]) if len(rows) > limit else ""
    return JobPage(jobs=jobs, next_page_token=next_token)


def unfinished_events(db: sqlite3.Connection) -> dict[str, list[JobEvent]]:
    return events_by_job(db.execute(UNFINISHED_EVENTS))


def unfinished_jobs(db: sqlite3.Connection) -> list[JobRecord]:
    return [job_from_row(row) for row in db.execute(UNFINISHED_JOBS).fetchall()]


def transition(
    db: sqlite3.Connection,
    job_id: str,
    from_states: Collection[JobState],
    attempt: int,
    to: JobState,
    changes: JobChanges,
    now: datetime,
    event: JobEvent,
    settle: SettleRequest | None,
    ended: Callable[[sqlite3.Connection, str, JobState, datetime], None],
) -> JobRecord | None:
    """Compare-and-set the job's state, with its event and settlement, and `ended` told of a terminal state;
    None if the job moved on meanwhile."""
    assignments = ["state = ?", "updated_at = ?"]
    args: list[Any] = [to.value, micros(now)]
    for column, value in asdict(changes).items():
        if value is None:
            continue
        assignments.append(f"{column} = ?")
        args.append(micros(value) if isinstance(value, datetime) else value)
    sources = sorted(state.value for state in from_states)
    # Whether the job has a hold to settle comes back with the row: a free job's terminal transition
    # then costs no extra statement.
    returning = JOB_COLUMNS + (", EXISTS (" + sqlite_ledger.OPEN_HOLD + ") AS has_hold" if settle else "")
    sql = (
        f"UPDATE jobs SET {', '.join(assignments)}"
        f" WHERE job_id = ? AND attempt = ? AND state IN ({', '.join('?' * len(sources))})"
        f" RETURNING {returning}"
    )
    row = db.execute(sql, (*args, job_id, attempt, *sources)).fetchone()
    if row is None:
        return None
    if db.execute(_INSERT_NEXT_EVENT, event_row(event)).rowcount != 1:
        raise LostRace  # the event's sequence number is taken: the caller's copy of the job was behind
    issued = settle is not None and row["has_hold"] and sqlite_ledger.settle_hold(db, job_id, attempt, settle, now)
    if to.is_terminal:
        ended(db, job_id, to, now)  # after the settlement, so that what it reads names the receipt
    return get_job(db, job_id) if issued else job_from_row(row)  # a receipt was issued: the row again, for its id


def read_events(db: sqlite3.Connection, job_id: str, from_seq: int) -> list[JobEvent]:
    sql = f"SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = ? AND seq >= ? ORDER BY seq"
    return [event_from_row(row) for row in db.execute(sql, (job_id, from_seq)).fetchall()]
