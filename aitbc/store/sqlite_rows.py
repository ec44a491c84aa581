"""Store rows ⇄ domain records: column lists, timestamps, JSON fields and page tokens.

Shared by both stores: the PostgreSQL schema keeps SQLite's column names and encodings (times in integer µs,
JSON fields as text), and a `Row` and an `asyncpg.Record` are both read by column name."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol

from aitbc.domain.errors import invalid_argument
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import DEFAULT_TTL, ChatMessage, JobRecord, JobSpec, SamplingParams
from aitbc.domain.keys import Role
from aitbc.domain.priority import Priority
from aitbc.domain.reputation import MinerStats
from aitbc.domain.states import JobState
from aitbc.store.base import ApiKeyRecord, MinerRecord


class Row(Protocol):
    """A result row, read by column name or position: `sqlite3.Row` or `asyncpg.Record`."""

    def __getitem__(self, key: Any, /) -> Any: ...


JOB_COLUMNS = (
    "job_id, owner_id, state, prompt, model, max_tokens, temperature, top_p, stream, stop, messages, raw,"
    " finish_reason, result, miner_id, attempt, prompt_tokens, completion_tokens, error, created_at, updated_at,"
    " started_at, completed_at, priority, max_price, idempotency_key, expires_at, estimated_cost, miner_reputation,"
    " excused_attempts, receipt_id, result_deleted_at"
)
KEY_COLUMNS = "key_id, role, owner_id, created_at, last_used_at, revoked_at"
EVENT_COLUMNS = (
    "job_id, seq, time, kind, state, text, token_count, miner_id, attempt, error, prompt_tokens, completion_tokens,"
    " finish_reason"
)


def placeholders(columns: str) -> str:
    """One `?` per column of a comma-separated column list, for its INSERT."""
    return ", ".join("?" * len(columns.split(",")))


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def moment(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


def _micro(value: float | int | None) -> int | None:
    # Migration 2 made the money columns REAL: SQLite hands an int stored there back as a float, exact below
    # 2**53 (`MAX_AMOUNT`), so the µcr written come back unchanged.
    return None if value is None else int(value)


def job_from_row(row: Row) -> JobRecord:
    created_at = moment(row["created_at"])
    updated_at = moment(row["updated_at"])
    assert created_at is not None
    assert updated_at is not None
    expires_at = moment(row["expires_at"])
    return JobRecord(
        job_id=row["job_id"],
        owner_id=row["owner_id"],
        state=JobState(row["state"]),
        spec=JobSpec(
            prompt=row["prompt"],
            model=row["model"],
            params=SamplingParams(
                max_tokens=row["max_tokens"],
                temperature=row["temperature"],
                top_p=row["top_p"],
                stream=bool(row["stream"]),
                stop=tuple(json.loads(row["stop"])),
            ),
            messages=tuple(ChatMessage(**message) for message in json.loads(row["messages"])),
            raw=bool(row["raw"]),
            priority=Priority(row["priority"]),
            max_price=_micro(row["max_price"]),
            idempotency_key=row["idempotency_key"] or "",
            ttl=expires_at - created_at if expires_at else DEFAULT_TTL,
        ),
        expires_at=expires_at,
        estimated_cost=int(row["estimated_cost"]),
        miner_reputation=row["miner_reputation"],
        excused_attempts=row["excused_attempts"],
        receipt_id=row["receipt_id"],
        result_deleted_at=moment(row["result_deleted_at"]),
        finish_reason=row["finish_reason"],
        result=row["result"],
        miner_id=row["miner_id"],
        attempt=row["attempt"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        error=row["error"],
        created_at=created_at,
        updated_at=updated_at,
        started_at=moment(row["started_at"]),
        completed_at=moment(row["completed_at"]),
    )


def key_from_row(row: Row) -> ApiKeyRecord:
    created_at = moment(row["created_at"])
    assert created_at is not None
    return ApiKeyRecord(
        key_id=row["key_id"],
        role=Role(row["role"]),
        owner_id=row["owner_id"],
        created_at=created_at,
        last_used_at=moment(row["last_used_at"]),
        revoked_at=moment(row["revoked_at"]),
    )


def event_from_row(row: Row) -> JobEvent:
    time = moment(row["time"])
    assert time is not None
    return JobEvent(
        job_id=row["job_id"],
        seq=row["seq"],
        time=time,
        kind=EventKind(row["kind"]),
        state=JobState(row["state"]) if row["state"] else None,
        text=row["text"],
        token_count=row["token_count"],
        miner_id=row["miner_id"],
        attempt=row["attempt"],
        error=row["error"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        finish_reason=row["finish_reason"],
    )


# What start-up reloads, in both stores: unfinished jobs oldest first, and their events by job and sequence
# (`events_by_job` groups the rows).
_UNFINISHED = "('pending', 'assigned', 'running')"
UNFINISHED_JOBS = f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN {_UNFINISHED} ORDER BY created_at"
UNFINISHED_EVENTS = (
    f"SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id IN"
    f" (SELECT job_id FROM jobs WHERE state IN {_UNFINISHED}) ORDER BY job_id, seq"
)


def events_by_job(rows: Iterable[Row]) -> dict[str, list[JobEvent]]:
    events: dict[str, list[JobEvent]] = {}
    for row in rows:
        event = event_from_row(row)
        events.setdefault(event.job_id, []).append(event)
    return events


def event_row(event: JobEvent) -> tuple[Any, ...]:
    return (
        event.job_id,
        event.seq,
        micros(event.time),
        event.kind.value,
        event.state.value if event.state else None,
        event.text,
        event.token_count,
        event.miner_id,
        event.attempt,
        event.error,
        event.prompt_tokens,
        event.completion_tokens,
        event.finish_reason,
    )


def encode_page_token(job: JobRecord) -> str:
    return base64.urlsafe_b64encode(f"{micros(job.created_at)}:{job.job_id}".encode()).decode()


def decode_page_token(token: str) -> tuple[int, str]:
    try:
        created, _, job_id = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(created), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_argument("page_token", "is not a token from a previous response") from None


def job_row(job: JobRecord) -> tuple[Any, ...]:
    """The values of `JOB_COLUMNS` for a new job's INSERT."""
    params = job.spec.params
    return (
        job.job_id,
        job.owner_id,
        job.state.value,
        job.spec.prompt,
        job.spec.model,
        params.max_tokens,
        params.temperature,
        params.top_p,
        int(params.stream),
        json.dumps(list(params.stop)),
        json.dumps([asdict(message) for message in job.spec.messages]),
        int(job.spec.raw),
        job.finish_reason,
        job.result,
        job.miner_id,
        job.attempt,
        job.prompt_tokens,
        job.completion_tokens,
        job.error,
        micros(job.created_at),
        micros(job.updated_at),
        None,
        None,
        int(job.spec.priority),
        job.spec.max_price,
        job.spec.idempotency_key or None,
        micros(job.expires_at) if job.expires_at else None,
        job.estimated_cost,
        job.miner_reputation,
        job.excused_attempts,
        job.receipt_id,
        None,  # result_deleted_at
    )


MINER_COLUMNS = (
    "miner_id, owner_id, completions, failures, cancellations, lease_expiries, tokens_per_second, ttft_seconds,"
    " updated_at, last_seen, models, backend"
)


def miner_row(miner: MinerRecord) -> tuple[Any, ...]:
    stats = miner.stats
    return (
        miner.miner_id,
        miner.owner_id,
        stats.completions,
        stats.failures,
        stats.cancellations,
        stats.lease_expiries,
        stats.tokens_per_second,
        stats.ttft_seconds,
        micros(stats.updated_at) if stats.updated_at else None,
        micros(miner.last_seen),
        json.dumps(list(miner.models)),
        miner.backend,
    )


def miner_from_row(row: Row) -> MinerRecord:
    return MinerRecord(
        miner_id=row["miner_id"],
        owner_id=row["owner_id"],
        stats=MinerStats(
            completions=row["completions"],
            failures=row["failures"],
            cancellations=row["cancellations"],
            lease_expiries=row["lease_expiries"],
            tokens_per_second=row["tokens_per_second"],
            ttft_seconds=row["ttft_seconds"],
            updated_at=moment(row["updated_at"]),
        ),
        last_seen=moment(row["last_seen"]) or datetime.fromtimestamp(0, UTC),
        models=tuple(json.loads(row["models"])),
        backend=row["backend"],
    )
