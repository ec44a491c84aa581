"""The PostgreSQL store: `Store` over an asyncpg pool (`aitbc coordinator --store postgresql://…`).

Same contract and semantics as `SqliteStore`: each method is one transaction; a transition is a
compare-and-set (`UPDATE … WHERE state = ANY($n) AND attempt = $m RETURNING …`) that appends its event,
settles the job's hold (once per job: the hold row records the (job, attempt) that settled it) and queues its
webhook deliveries in that transaction. The SQL lives here and in `postgres_ledger` and `postgres_queries`; the
row conversions and what settlement computes are shared with SQLite (`sqlite_rows`, `settlement`). Schema
migrations are in `postgres_migrations` (docs/postgres.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aitbc.domain.blocks import Block
from aitbc.domain.events import JobEvent
from aitbc.domain.history import JobFilter
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role, key_id
from aitbc.domain.receipts import Receipt
from aitbc.domain.states import JobState
from aitbc.store import postgres_ledger
from aitbc.store.base import (
    AccountRecord,
    ApiKeyRecord,
    BlockBuilder,
    HoldRequest,
    JobChanges,
    JobMovedOnError,
    JobPage,
    JobTotals,
    JobWindow,
    LedgerEntry,
    LedgerStats,
    MinerRecord,
    SettleRequest,
    StoreUnavailableError,
)
from aitbc.store.postgres_migrations import (
    MIGRATION_LOCK,
    POSTGRES_MIGRATIONS,
    POSTGRES_SCHEMA_VERSION,
    SCHEMA_MIGRATIONS_TABLE,
)
from aitbc.store.postgres_pool import STORE_FAILURES, Connections, pg
from aitbc.store.postgres_queries import PostgresHistory, PostgresResults, PostgresWebhooks, enqueue_job_event
from aitbc.store.postgres_replicas import PostgresReplicas, new_replica_id
from aitbc.store.sqlite_history import filter_clauses, where
from aitbc.store.sqlite_rows import (
    EVENT_COLUMNS,
    JOB_COLUMNS,
    KEY_COLUMNS,
    MINER_COLUMNS,
    UNFINISHED_EVENTS,
    UNFINISHED_JOBS,
    decode_page_token,
    encode_page_token,
    event_from_row,
    event_row,
    events_by_job,
    job_from_row,
    job_row,
    key_from_row,
    micros,
    miner_from_row,
    miner_row,
    placeholders,
)
from aitbc.store.urls import redact

Connection = Any  # asyncpg.Connection

_INSERT_EVENT = pg(f"INSERT INTO job_events ({EVENT_COLUMNS}) VALUES ({placeholders(EVENT_COLUMNS)})")
# A transition's event. Another coordinator may have stored the job's next event first (its copy of the job
# was ahead of this one's): then nothing is inserted and the transition rolls back, as a lost compare-and-set.
_INSERT_NEXT_EVENT = pg(
    f"INSERT INTO job_events ({EVENT_COLUMNS}) VALUES ({placeholders(EVENT_COLUMNS)})"
    " ON CONFLICT (job_id, seq) DO NOTHING RETURNING seq"
)
# Output of an attempt, stored only while the job is still on that attempt on a miner: a coordinator whose jobs
# were taken over (its lease lapsed) cannot add to them (docs/scaling.md, fencing).
_INSERT_OUTPUT = pg(
    f"INSERT INTO job_events ({EVENT_COLUMNS}) SELECT {placeholders(EVENT_COLUMNS)}"
    " WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ? AND attempt = ? AND state IN ('assigned', 'running'))"
    " ON CONFLICT (job_id, seq) DO NOTHING RETURNING seq"
)
_INSERT_JOB = pg(
    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})"
    " ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING job_id"
)


async def migrate(db: Connection) -> int:
    """Apply the migrations this database lacks, in one transaction under an advisory lock; the version now."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await db.execute(SCHEMA_MIGRATIONS_TABLE)
        version = int(await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
        if version > POSTGRES_SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema {version} is newer than this build understands ({POSTGRES_SCHEMA_VERSION})"
            )
        for number in range(version, POSTGRES_SCHEMA_VERSION):
            await db.execute(POSTGRES_MIGRATIONS[number])
            await db.execute("INSERT INTO schema_migrations (version) VALUES ($1)", number + 1)
    return POSTGRES_SCHEMA_VERSION


class PostgresStore(PostgresResults, PostgresHistory, PostgresWebhooks, PostgresReplicas):
    """`Store` on PostgreSQL. Results, history and webhooks are in the mixins (`postgres_queries`)."""

    def __init__(self, connections: Connections, replica_id: str) -> None:
        self._db = connections
        self.replica_id = replica_id

    @classmethod
    async def open(cls, dsn: str, *, max_connections: int = 10, replica_id: str = "") -> PostgresStore:
        """Connect and migrate; StoreUnavailableError if the server cannot be reached.

        `replica_id` names this coordinator process among those sharing the database (docs/scaling.md);
        by default one made for the process: host, pid and a random part."""
        replica_id = replica_id or new_replica_id()
        connections = await Connections.open(dsn, max_size=max_connections, name=replica_id)
        try:
            async with connections.read() as db:
                await migrate(db)
        except StoreUnavailableError as error:
            await connections.close()
            raise StoreUnavailableError(f"cannot prepare the store {redact(dsn)}: {error}") from error
        except BaseException:
            await connections.close()
            raise
        return cls(connections, replica_id)

    async def close(self) -> None:
        await self._db.close()

    async def probe(self) -> None:
        async with self._db.write() as db:
            await db.execute(
                "INSERT INTO store_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                micros(datetime.now(UTC)),
            )

    async def schema_version(self) -> int:
        async with self._db.read() as db:
            return int(await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    # API keys

    async def add_api_key(self, key_hash: str, role: Role, owner_id: str, now: datetime) -> Principal:
        principal = Principal(key_id=key_id(key_hash), role=role, owner_id=owner_id)
        async with self._db.write() as db:
            await db.execute(
                "INSERT INTO api_keys (key_hash, key_id, role, owner_id, created_at) VALUES ($1, $2, $3, $4, $5)",
                key_hash,
                principal.key_id,
                role.value,
                owner_id,
                micros(now),
            )
        return principal

    async def principal_for(self, key_hash: str) -> Principal | None:
        async with self._db.read() as db:
            row = await db.fetchrow(
                "SELECT key_id, role, owner_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
            )
        if row is None:
            return None
        return Principal(key_id=row["key_id"], role=Role(row["role"]), owner_id=row["owner_id"])

    async def api_keys(self, *, owner_id: str | None) -> list[ApiKeyRecord]:
        where_owner, args = ("WHERE owner_id = $1", (owner_id,)) if owner_id is not None else ("", ())
        async with self._db.read() as db:
            rows = await db.fetch(
                f"SELECT {KEY_COLUMNS} FROM api_keys {where_owner} ORDER BY created_at, key_id", *args
            )
        return [key_from_row(row) for row in rows]

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        async with self._db.read() as db:
            return await _find_key(db, key_id)

    async def revoke_api_key(self, key_id: str, now: datetime) -> ApiKeyRecord | None:
        async with self._db.write() as db:
            await db.execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL", micros(now), key_id
            )
            return await _find_key(db, key_id)

    async def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        rows = [(micros(moment), key_id) for key_id, moment in last_used.items()]
        async with self._db.write() as db:
            await db.executemany(
                "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE key_id = $2", rows
            )

    # Jobs

    async def create_job(self, job: JobRecord, first_event: JobEvent, hold: HoldRequest | None = None) -> JobRecord:
        async with self._db.write() as db:
            # A concurrent submission with the same idempotency key (on another coordinator, say) inserts
            # nothing here: the job it stored is returned, as SQLite returns the one it finds first.
            inserted = await db.fetchval(_INSERT_JOB, *job_row(job))
            if inserted is None:
                existing = await _find_by_idempotency_key(db, job.owner_id, job.spec.idempotency_key)
                assert existing is not None
                return existing
            await db.execute(_INSERT_EVENT, *event_row(first_event))
            if hold is not None:
                await postgres_ledger.place_hold(db, job.job_id, hold, job.created_at)
        return job

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with self._db.read() as db:
            return await _get_job(db, job_id)

    async def job_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        async with self._db.read() as db:
            return await _find_by_idempotency_key(db, owner_id, key)

    async def list_jobs(
        self,
        *,
        owner_id: str | None,
        state: JobState | None,
        limit: int,
        page_token: str,
        model: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> JobPage:
        job_filter = JobFilter(owner_id, state, model, created_after, created_before)
        clauses, args = filter_clauses(job_filter, decode_page_token(page_token) if page_token else None)
        # One extra row tells whether another page exists.
        sql = pg(f"SELECT {JOB_COLUMNS} FROM jobs {where(clauses)} ORDER BY created_at DESC, job_id DESC LIMIT ?")
        async with self._db.read() as db:
            rows = await db.fetch(sql, *args, limit + 1)
        jobs = [job_from_row(row) for row in rows[:limit]]
        return JobPage(jobs=jobs, next_page_token=encode_page_token(jobs[-1]) if len(rows) > limit else "")

    async def unfinished_jobs(self) -> list[JobRecord]:
        async with self._db.read() as db:
            rows = await db.fetch(UNFINISHED_JOBS)
        return [job_from_row(row) for row in rows]

    async def unfinished_events(self) -> dict[str, list[JobEvent]]:
        async with self._db.read() as db:
            return events_by_job(await db.fetch(UNFINISHED_EVENTS))

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
        returning = JOB_COLUMNS + (", EXISTS (" + postgres_ledger.OPEN_HOLD + ") AS has_hold" if settle else "")
        sql = pg(
            f"UPDATE jobs SET {', '.join(assignments)}"
            f" WHERE job_id = ? AND attempt = ? AND state = ANY(?::text[]) RETURNING {returning}"
        )
        sources = sorted(state.value for state in from_states)
        try:
            async with self._db.write() as db:
                row = await db.fetchrow(sql, *args, job_id, attempt, sources)
                if row is None:
                    return None
                if await db.fetchval(_INSERT_NEXT_EVENT, *event_row(event)) is None:
                    raise _LostRace
                issued = (
                    settle is not None
                    and row["has_hold"]
                    and await postgres_ledger.settle_hold(db, job_id, attempt, settle, now)
                )
                if to.is_terminal:
                    await enqueue_job_event(db, job_id, to, now)  # after the settlement: the payload names the receipt
                if issued:
                    return await _get_job(db, job_id)  # a receipt was issued: the row again, for its id
        except _LostRace:
            return None
        return job_from_row(row)

    # Accounts and the ledger

    async def credit(self, account_id: str, amount: int, *, tx_id: str, now: datetime) -> AccountRecord:
        async with self._db.write() as db:
            await postgres_ledger.credit(db, account_id, amount, tx_id, now)
            return await postgres_ledger.read_account(db, account_id)

    async def account(self, account_id: str) -> AccountRecord:
        async with self._db.read() as db:
            return await postgres_ledger.read_account(db, account_id)

    async def accounts(self) -> list[AccountRecord]:
        async with self._db.read() as db:
            return await postgres_ledger.read_accounts(db)

    async def receipt(self, receipt_id: str) -> Receipt | None:
        async with self._db.read() as db:
            return await postgres_ledger.read_receipt(db, receipt_id)

    async def receipts(self, *, client: str | None, limit: int) -> list[Receipt]:
        async with self._db.read() as db:
            return await postgres_ledger.read_receipts(db, client, limit)

    async def receipts_before(self, *, before_seq: int | None, limit: int) -> list[tuple[int, Receipt]]:
        async with self._db.read() as db:
            return await postgres_ledger.read_receipts_before(db, before_seq, limit)

    async def seal_block(self, build: BlockBuilder, *, max_transactions: int, now: datetime) -> Block | None:
        async with self._db.write() as db:
            return await postgres_ledger.seal(db, build, max_transactions, micros(now))

    async def receipt_block(self, receipt_id: str) -> int | None:
        async with self._db.read() as db:
            return await postgres_ledger.receipt_block(db, receipt_id)

    async def blocks(self, *, from_height: int = 0, limit: int = 100) -> list[Block]:
        async with self._db.snapshot() as db:
            return await postgres_ledger.read_blocks(db, from_height, limit)

    async def ledger_stats(self) -> LedgerStats:
        async with self._db.read() as db:
            return await postgres_ledger.read_stats(db)

    async def job_totals(self, *, since: Sequence[datetime]) -> JobTotals:
        async with self._db.snapshot() as db:
            row = await db.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), coalesce(sum(completion_tokens), 0)"
                " FROM jobs"
            )
            windows = []
            for moment in since:
                window = await db.fetchrow(
                    "SELECT count(*), coalesce(sum(completion_tokens), 0) FROM jobs"
                    " WHERE state = 'completed' AND completed_at >= $1",
                    micros(moment),
                )
                windows.append(JobWindow(int(window[0]), int(window[1])))
        return JobTotals(int(row[0]), int(row[1]), int(row[2]), tuple(windows))

    async def ledger(self, *, after_seq: int = 0, limit: int = 1000) -> list[LedgerEntry]:
        async with self._db.read() as db:
            return await postgres_ledger.read_ledger(db, after_seq, limit)

    async def ledger_before(self, *, before_seq: int | None, limit: int) -> list[LedgerEntry]:
        async with self._db.read() as db:
            return await postgres_ledger.read_ledger_before(db, before_seq, limit)

    # Miners

    async def miners(self) -> list[MinerRecord]:
        async with self._db.read() as db:
            rows = await db.fetch(f"SELECT {MINER_COLUMNS} FROM miner_stats ORDER BY miner_id")
        return [miner_from_row(row) for row in rows]

    async def miner(self, miner_id: str) -> MinerRecord | None:
        async with self._db.read() as db:
            row = await db.fetchrow(f"SELECT {MINER_COLUMNS} FROM miner_stats WHERE miner_id = $1", miner_id)
        return None if row is None else miner_from_row(row)

    async def save_miners(self, miners: Sequence[MinerRecord]) -> None:
        updates = ", ".join(f"{name.strip()} = excluded.{name.strip()}" for name in MINER_COLUMNS.split(",")[1:])
        async with self._db.write() as db:
            await db.executemany(
                pg(
                    f"INSERT INTO miner_stats ({MINER_COLUMNS}) VALUES ({placeholders(MINER_COLUMNS)})"
                    f" ON CONFLICT (miner_id) DO UPDATE SET {updates}"
                ),
                [miner_row(miner) for miner in miners],
            )

    # Events

    async def append_events(self, events: Sequence[JobEvent]) -> None:
        """Store output events; JobMovedOnError (and nothing stored) if their attempt is no longer on a miner."""
        async with self._db.write() as db:
            for event in events:
                if await db.fetchval(_INSERT_OUTPUT, *event_row(event), event.job_id, event.attempt) is None:
                    raise JobMovedOnError(f"job {event.job_id} is no longer on attempt {event.attempt}")

    async def events(self, job_id: str, *, from_seq: int = 1) -> list[JobEvent]:
        async with self._db.read() as db:
            rows = await db.fetch(
                f"SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = $1 AND seq >= $2 ORDER BY seq", job_id, from_seq
            )
        return [event_from_row(row) for row in rows]


class _LostRace(Exception):
    """Raised inside a transaction to roll it back: another coordinator changed the job first."""


async def _find_key(db: Connection, key_id: str) -> ApiKeyRecord | None:
    row = await db.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1", key_id)
    return None if row is None else key_from_row(row)


async def _get_job(db: Connection, job_id: str) -> JobRecord | None:
    row = await db.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1", job_id)
    return None if row is None else job_from_row(row)


async def _find_by_idempotency_key(db: Connection, owner_id: str, key: str) -> JobRecord | None:
    row = await db.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner_id = $1 AND idempotency_key = $2", owner_id, key
    )
    return None if row is None else job_from_row(row)


__all__ = ["STORE_FAILURES", "PostgresStore", "migrate"]
