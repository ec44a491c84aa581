"""The embedded store: one SQLite file in WAL mode, through aiosqlite."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from aitbc.domain.errors import invalid_argument
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import DEFAULT_TTL, ChatMessage, JobRecord, JobSpec, SamplingParams
from aitbc.domain.keys import Principal, Role, key_id
from aitbc.domain.priority import Priority
from aitbc.domain.reputation import MinerStats
from aitbc.domain.states import JobState
from aitbc.store.base import JobChanges, JobPage, MinerRecord
from aitbc.store.migrations import MIGRATIONS, SCHEMA_VERSION

_JOB_COLUMNS = (
    "job_id, owner_id, state, prompt, model, max_tokens, temperature, top_p, stream, stop, messages, raw,"
    " finish_reason, result, miner_id, attempt, prompt_tokens, completion_tokens, error, created_at, updated_at,"
    " started_at, completed_at, priority, max_price, idempotency_key, expires_at, estimated_cost, miner_reputation"
)
_EVENT_COLUMNS = (
    "job_id, seq, time, kind, state, text, token_count, miner_id, attempt, error, prompt_tokens, completion_tokens,"
    " finish_reason"
)


def _placeholders(columns: str) -> str:
    """One `?` per column of a comma-separated column list, for its INSERT."""
    return ", ".join("?" * len(columns.split(",")))


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _moment(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


def _job_from_row(row: aiosqlite.Row) -> JobRecord:
    created_at = _moment(row["created_at"])
    updated_at = _moment(row["updated_at"])
    assert created_at is not None
    assert updated_at is not None
    expires_at = _moment(row["expires_at"])
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
            max_price=row["max_price"],
            idempotency_key=row["idempotency_key"] or "",
            ttl=expires_at - created_at if expires_at else DEFAULT_TTL,
        ),
        expires_at=expires_at,
        estimated_cost=row["estimated_cost"],
        miner_reputation=row["miner_reputation"],
        finish_reason=row["finish_reason"],
        result=row["result"],
        miner_id=row["miner_id"],
        attempt=row["attempt"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        error=row["error"],
        created_at=created_at,
        updated_at=updated_at,
        started_at=_moment(row["started_at"]),
        completed_at=_moment(row["completed_at"]),
    )


def _event_from_row(row: aiosqlite.Row) -> JobEvent:
    time = _moment(row["time"])
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


def _event_row(event: JobEvent) -> tuple[Any, ...]:
    return (
        event.job_id,
        event.seq,
        _micros(event.time),
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


def _encode_page_token(job: JobRecord) -> str:
    return base64.urlsafe_b64encode(f"{_micros(job.created_at)}:{job.job_id}".encode()).decode()


def _decode_page_token(token: str) -> tuple[int, str]:
    try:
        created, _, job_id = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(created), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_argument("page_token", "is not a token from a previous response") from None


class SqliteStore:
    """The default store. One connection; a lock keeps each method's statements one transaction."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteStore:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        connection.row_factory = aiosqlite.Row
        store = cls(connection)
        try:
            await store._configure()
        except BaseException:
            await connection.close()
            raise
        return store

    async def _configure(self) -> None:
        # WAL lets readers proceed during writes; NORMAL sync is durable
        # across process crashes, which is what "acknowledged means durable" needs.
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        version = await self.schema_version()
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"database schema {version} is newer than this build understands ({SCHEMA_VERSION})")
        for number in range(version, SCHEMA_VERSION):
            await self._db.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
            )

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # API keys

    async def add_api_key(self, key_hash: str, role: Role, owner_id: str, now: datetime) -> Principal:
        principal = Principal(key_id=key_id(key_hash), role=role, owner_id=owner_id)
        async with self._lock:
            await self._db.execute(
                "INSERT INTO api_keys (key_hash, key_id, role, owner_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_hash, principal.key_id, role.value, owner_id, _micros(now)),
            )
        return principal

    async def principal_for(self, key_hash: str) -> Principal | None:
        async with (
            self._lock,
            self._db.execute("SELECT key_id, role, owner_id FROM api_keys WHERE key_hash = ?", (key_hash,)) as cursor,
        ):
            row = await cursor.fetchone()
        if row is None:
            return None
        return Principal(key_id=row["key_id"], role=Role(row["role"]), owner_id=row["owner_id"])

    # Jobs

    async def create_job(self, job: JobRecord, first_event: JobEvent) -> JobRecord:
        params = job.spec.params
        key = job.spec.idempotency_key or None
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                existing = await self._find_by_idempotency_key(job.owner_id, key) if key is not None else None
                if existing is not None:
                    await self._db.execute("ROLLBACK")
                    return existing
                await self._db.execute(
                    f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({_placeholders(_JOB_COLUMNS)})",
                    (
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
                        _micros(job.created_at),
                        _micros(job.updated_at),
                        None,
                        None,
                        int(job.spec.priority),
                        job.spec.max_price,
                        key,
                        _micros(job.expires_at) if job.expires_at else None,
                        job.estimated_cost,
                        job.miner_reputation,
                    ),
                )
                await self._insert_events([first_event])
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
        return job

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with (
            self._lock,
            self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else _job_from_row(row)

    async def job_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        async with self._lock:
            return await self._find_by_idempotency_key(owner_id, key)

    async def _find_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        async with self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner_id = ? AND idempotency_key = ?", (owner_id, key)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _job_from_row(row)

    async def list_jobs(self, *, owner_id: str | None, state: JobState | None, limit: int, page_token: str) -> JobPage:
        clauses: list[str] = []
        args: list[Any] = []
        if owner_id is not None:
            clauses.append("owner_id = ?")
            args.append(owner_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state.value)
        if page_token:
            created, job_id = _decode_page_token(page_token)
            clauses.append("(created_at, job_id) < (?, ?)")
            args.extend((created, job_id))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # One extra row tells whether another page exists.
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, job_id DESC LIMIT ?"
        async with self._lock, self._db.execute(sql, (*args, limit + 1)) as cursor:
            rows = list(await cursor.fetchall())
        jobs = [_job_from_row(row) for row in rows[:limit]]
        next_token = _encode_page_token(jobs[-1]) if len(rows) > limit else ""
        return JobPage(jobs=jobs, next_page_token=next_token)

    async def unfinished_jobs(self) -> list[JobRecord]:
        async with (
            self._lock,
            self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ('pending', 'assigned', 'running') ORDER BY created_at"
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [_job_from_row(row) for row in rows]

    async def transition(
        self,
        job_id: str,
        *,
        from_states: Collection[JobState],
        attempt: int,
        to: JobState,
        changes: JobChanges,
        now: datetime,
        event: JobEvent,
    ) -> JobRecord | None:
        assignments = ["state = ?", "updated_at = ?"]
        args: list[Any] = [to.value, _micros(now)]
        for column, value in asdict(changes).items():
            if value is None:
                continue
            assignments.append(f"{column} = ?")
            args.append(_micros(value) if isinstance(value, datetime) else value)
        sources = sorted(state.value for state in from_states)
        sql = (
            f"UPDATE jobs SET {', '.join(assignments)}"
            f" WHERE job_id = ? AND attempt = ? AND state IN ({', '.join('?' * len(sources))})"
            f" RETURNING {_JOB_COLUMNS}"
        )
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                async with self._db.execute(sql, (*args, job_id, attempt, *sources)) as cursor:
                    row = await cursor.fetchone()
                if row is not None:
                    await self._insert_events([event])
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
        return None if row is None else _job_from_row(row)

    # Miners

    async def miners(self) -> list[MinerRecord]:
        async with (
            self._lock,
            self._db.execute(
                "SELECT miner_id, owner_id, completions, failures, cancellations, lease_expiries, tokens_per_second,"
                " ttft_seconds, updated_at, last_seen, models, backend FROM miner_stats ORDER BY miner_id"
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [
            MinerRecord(
                miner_id=row["miner_id"],
                owner_id=row["owner_id"],
                stats=MinerStats(
                    completions=row["completions"],
                    failures=row["failures"],
                    cancellations=row["cancellations"],
                    lease_expiries=row["lease_expiries"],
                    tokens_per_second=row["tokens_per_second"],
                    ttft_seconds=row["ttft_seconds"],
                    updated_at=_moment(row["updated_at"]),
                ),
                last_seen=_moment(row["last_seen"]) or datetime.fromtimestamp(0, UTC),
                models=tuple(json.loads(row["models"])),
                backend=row["backend"],
            )
            for row in rows
        ]

    async def save_miner(self, miner: MinerRecord) -> None:
        stats = miner.stats
        async with self._lock:
            await self._db.execute(
                "INSERT OR REPLACE INTO miner_stats (miner_id, owner_id, completions, failures, cancellations,"
                " lease_expiries, tokens_per_second, ttft_seconds, updated_at, last_seen, models, backend)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    miner.miner_id,
                    miner.owner_id,
                    stats.completions,
                    stats.failures,
                    stats.cancellations,
                    stats.lease_expiries,
                    stats.tokens_per_second,
                    stats.ttft_seconds,
                    _micros(stats.updated_at) if stats.updated_at else None,
                    _micros(miner.last_seen),
                    json.dumps(list(miner.models)),
                    miner.backend,
                ),
            )

    # Events

    async def _insert_events(self, events: Sequence[JobEvent]) -> None:
        await self._db.executemany(
            f"INSERT INTO job_events ({_EVENT_COLUMNS}) VALUES ({_placeholders(_EVENT_COLUMNS)})",
            [_event_row(event) for event in events],
        )

    async def append_events(self, events: Sequence[JobEvent]) -> None:
        async with self._lock:
            await self._insert_events(events)

    async def events(self, job_id: str, *, from_seq: int = 1) -> list[JobEvent]:
        async with (
            self._lock,
            self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM job_events WHERE job_id = ? AND seq >= ? ORDER BY seq",
                (job_id, from_seq),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [_event_from_row(row) for row in rows]
