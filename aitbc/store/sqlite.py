"""The embedded store: one SQLite file in WAL mode, through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from aitbc.domain.blocks import Block
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role, key_id
from aitbc.domain.receipts import Receipt
from aitbc.domain.states import JobState
from aitbc.store import sqlite_blocks, sqlite_ledger, sqlite_miners, sqlite_stats
from aitbc.store.base import (
    AccountRecord,
    ApiKeyRecord,
    BlockBuilder,
    HoldRequest,
    JobChanges,
    JobPage,
    JobTotals,
    LedgerEntry,
    LedgerStats,
    MinerRecord,
    SettleRequest,
    StoreUnavailableError,
)
from aitbc.store.migrations import MIGRATIONS, SCHEMA_VERSION
from aitbc.store.sqlite_rows import (
    EVENT_COLUMNS,
    JOB_COLUMNS,
    KEY_COLUMNS,
    decode_page_token,
    encode_page_token,
    event_from_row,
    event_row,
    job_from_row,
    key_from_row,
    micros,
    placeholders,
)


class SqliteStore:
    """The default store. One connection; a lock keeps each method's statements one transaction."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteStore:
        """Open (creating and migrating) the store; StoreUnavailableError if the file cannot be opened or written."""
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection = await aiosqlite.connect(str(path), isolation_level=None)
        except (sqlite3.OperationalError, OSError) as error:
            raise StoreUnavailableError(f"cannot open the store {path}: {error}") from error
        connection.row_factory = aiosqlite.Row
        store = cls(connection)
        try:
            await store._configure()
        except (sqlite3.OperationalError, OSError) as error:
            await connection.close()
            raise StoreUnavailableError(f"cannot prepare the store {path}: {error}") from error
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

    async def probe(self) -> None:
        async with self._transaction():
            await self._db.execute(
                "INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, ?)", (micros(datetime.now(UTC)),)
            )

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """One write transaction; rolled back on any error; a store that cannot write raises StoreUnavailableError.

        A failed COMMIT (a full disk) leaves SQLite's transaction open; rolling it
        back is what lets the next write start at all once space is back.
        """
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    await self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            await self._db.execute("ROLLBACK")
                    raise
            except (sqlite3.OperationalError, OSError) as error:
                raise StoreUnavailableError(f"the store failed: {error}") from error

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        async with self._lock:
            try:
                yield
            except (sqlite3.OperationalError, OSError) as error:
                raise StoreUnavailableError(f"the store failed: {error}") from error

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # API keys

    async def add_api_key(self, key_hash: str, role: Role, owner_id: str, now: datetime) -> Principal:
        principal = Principal(key_id=key_id(key_hash), role=role, owner_id=owner_id)
        async with self._transaction():
            await self._db.execute(
                "INSERT INTO api_keys (key_hash, key_id, role, owner_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_hash, principal.key_id, role.value, owner_id, micros(now)),
            )
        return principal

    async def principal_for(self, key_hash: str) -> Principal | None:
        async with (
            self._reading(),
            self._db.execute(
                "SELECT key_id, role, owner_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
            ) as cursor,
        ):
            row = await cursor.fetchone()
        if row is None:
            return None
        return Principal(key_id=row["key_id"], role=Role(row["role"]), owner_id=row["owner_id"])

    async def api_keys(self, *, owner_id: str | None) -> list[ApiKeyRecord]:
        where, args = ("WHERE owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
        sql = f"SELECT {KEY_COLUMNS} FROM api_keys {where} ORDER BY created_at, key_id"
        async with self._reading(), self._db.execute(sql, args) as cursor:
            rows = await cursor.fetchall()
        return [key_from_row(row) for row in rows]

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        async with self._lock:
            return await self._find_key(key_id)

    async def _find_key(self, key_id: str) -> ApiKeyRecord | None:
        async with self._db.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else key_from_row(row)

    async def revoke_api_key(self, key_id: str, now: datetime) -> ApiKeyRecord | None:
        async with self._transaction():
            await self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (micros(now), key_id)
            )
            return await self._find_key(key_id)

    async def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        async with self._transaction():
            await self._db.executemany(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE key_id = ?",
                [(micros(moment), key_id) for key_id, moment in last_used.items()],
            )

    # Jobs

    async def create_job(self, job: JobRecord, first_event: JobEvent, hold: HoldRequest | None = None) -> JobRecord:
        params = job.spec.params
        key = job.spec.idempotency_key or None
        async with self._transaction():
            existing = await self._find_by_idempotency_key(job.owner_id, key) if key is not None else None
            if existing is not None:
                return existing
            await self._db.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})",
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
                    micros(job.created_at),
                    micros(job.updated_at),
                    None,
                    None,
                    int(job.spec.priority),
                    job.spec.max_price,
                    key,
                    micros(job.expires_at) if job.expires_at else None,
                    job.estimated_cost,
                    job.miner_reputation,
                    job.excused_attempts,
                    job.receipt_id,
                ),
            )
            await self._insert_events([first_event])
            if hold is not None:
                await sqlite_ledger.place_hold(self._db, job.job_id, hold, job.created_at)
        return job

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with (
            self._reading(),
            self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else job_from_row(row)

    async def job_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        async with self._lock:
            return await self._find_by_idempotency_key(owner_id, key)

    async def _find_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        async with self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner_id = ? AND idempotency_key = ?", (owner_id, key)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else job_from_row(row)

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
            created, job_id = decode_page_token(page_token)
            clauses.append("(created_at, job_id) < (?, ?)")
            args.extend((created, job_id))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # One extra row tells whether another page exists.
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, job_id DESC LIMIT ?"
        async with self._reading(), self._db.execute(sql, (*args, limit + 1)) as cursor:
            rows = list(await cursor.fetchall())
        jobs = [job_from_row(row) for row in rows[:limit]]
        next_token = encode_page_token(jobs[-1]) if len(rows) > limit else ""
        return JobPage(jobs=jobs, next_page_token=next_token)

    async def unfinished_jobs(self) -> list[JobRecord]:
        async with (
            self._reading(),
            self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('pending', 'assigned', 'running') ORDER BY created_at"
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [job_from_row(row) for row in rows]

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
        settle: SettleRequest | None = None,
    ) -> JobRecord | None:
        assignments = ["state = ?", "updated_at = ?"]
        args: list[Any] = [to.value, micros(now)]
        for column, value in asdict(changes).items():
            if value is None:
                continue
            assignments.append(f"{column} = ?")
            args.append(micros(value) if isinstance(value, datetime) else value)
        sources = sorted(state.value for state in from_states)
        # Whether the job has a hold to settle comes back with the row: a free job's terminal transition
        # then costs no extra statement (each is a round trip to aiosqlite's thread).
        returning = JOB_COLUMNS + (", EXISTS (" + sqlite_ledger.OPEN_HOLD + ") AS has_hold" if settle else "")
        sql = (
            f"UPDATE jobs SET {', '.join(assignments)}"
            f" WHERE job_id = ? AND attempt = ? AND state IN ({', '.join('?' * len(sources))})"
            f" RETURNING {returning}"
        )
        async with self._transaction():
            async with self._db.execute(sql, (*args, job_id, attempt, *sources)) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                await self._insert_events([event])
                if (
                    settle is not None
                    and row["has_hold"]
                    and await sqlite_ledger.settle_hold(self._db, job_id, attempt, settle, now)
                ):
                    # A receipt was issued: read the row again for its id.
                    async with self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)) as again:
                        row = await again.fetchone()
        return None if row is None else job_from_row(row)

    # Accounts and the ledger

    async def credit(self, account_id: str, amount: int, *, tx_id: str, now: datetime) -> AccountRecord:
        async with self._transaction():
            await sqlite_ledger.credit(self._db, account_id, amount, tx_id, now)
            return await sqlite_ledger.read_account(self._db, account_id)

    async def account(self, account_id: str) -> AccountRecord:
        async with self._reading():
            return await sqlite_ledger.read_account(self._db, account_id)

    async def accounts(self) -> list[AccountRecord]:
        sql = f"SELECT {sqlite_ledger.ACCOUNT_COLUMNS} FROM accounts ORDER BY account_id"
        async with self._reading(), self._db.execute(sql) as cursor:
            rows = await cursor.fetchall()
        return [sqlite_ledger.account_from_row(row) for row in rows]

    async def receipt(self, receipt_id: str) -> Receipt | None:
        async with self._reading():
            return await sqlite_ledger.read_receipt(self._db, receipt_id)

    async def receipts(self, *, client: str | None, limit: int) -> list[Receipt]:
        async with self._reading():
            return await sqlite_ledger.read_receipts(self._db, client, limit)

    async def receipts_before(self, *, before_seq: int | None, limit: int) -> list[tuple[int, Receipt]]:
        async with self._reading():
            return await sqlite_ledger.read_receipts_before(self._db, before_seq, limit)

    async def seal_block(self, build: BlockBuilder, *, max_transactions: int, now: datetime) -> Block | None:
        async with self._transaction():
            return await sqlite_blocks.seal(self._db, build, max_transactions, micros(now))

    async def receipt_block(self, receipt_id: str) -> int | None:
        async with self._reading():
            return await sqlite_blocks.receipt_block(self._db, receipt_id)

    async def blocks(self, *, from_height: int = 0, limit: int = 100) -> list[Block]:
        async with self._reading():
            return await sqlite_blocks.read_blocks(self._db, from_height, limit)

    async def ledger_stats(self) -> LedgerStats:
        async with self._reading():
            return await sqlite_blocks.read_stats(self._db)

    async def job_totals(self, *, since: Sequence[datetime]) -> JobTotals:
        async with self._reading():
            return await sqlite_stats.read_job_totals(self._db, [micros(moment) for moment in since])

    async def ledger(self, *, after_seq: int = 0, limit: int = 1000) -> list[LedgerEntry]:
        async with self._reading():
            return await sqlite_ledger.read_ledger(self._db, after_seq, limit)

    async def ledger_before(self, *, before_seq: int | None, limit: int) -> list[LedgerEntry]:
        async with self._reading():
            return await sqlite_ledger.read_ledger_before(self._db, before_seq, limit)

    # Miners

    async def miners(self) -> list[MinerRecord]:
        async with self._reading():
            return await sqlite_miners.read_miners(self._db)

    async def save_miner(self, miner: MinerRecord) -> None:
        async with self._transaction():
            await sqlite_miners.write_miner(self._db, miner)

    # Events

    async def _insert_events(self, events: Sequence[JobEvent]) -> None:
        await self._db.executemany(
            f"INSERT INTO job_events ({EVENT_COLUMNS}) VALUES ({placeholders(EVENT_COLUMNS)})",
            [event_row(event) for event in events],
        )

    async def append_events(self, events: Sequence[JobEvent]) -> None:
        async with self._transaction():
            await self._insert_events(events)

    async def events(self, job_id: str, *, from_seq: int = 1) -> list[JobEvent]:
        async with (
            self._reading(),
            self._db.execute(
                f"SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = ? AND seq >= ? ORDER BY seq",
                (job_id, from_seq),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [event_from_row(row) for row in rows]
