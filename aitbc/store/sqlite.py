"""The embedded store: one SQLite file in WAL mode, on a thread of its own (`SqliteThread`).

Each method hands the thread one function that does all of its statements: one hop per call, and writes
from many callers commit in groups (see `aitbc/store/sqlite_thread.py`). The SQL lives in the `sqlite_*`
modules as plain functions of the connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aitbc.domain.blocks import Block
from aitbc.domain.events import JobEvent
from aitbc.domain.history import JobFilter
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role, key_id
from aitbc.domain.receipts import Receipt
from aitbc.domain.states import JobState
from aitbc.store import sqlite_blocks, sqlite_jobs, sqlite_ledger, sqlite_miners, sqlite_stats, sqlite_webhooks
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
from aitbc.store.sqlite_history import HistoryQueries
from aitbc.store.sqlite_results import SqliteResults
from aitbc.store.sqlite_rows import KEY_COLUMNS, key_from_row, micros
from aitbc.store.sqlite_thread import SqliteThread


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.row_factory = sqlite3.Row
    return connection


def _configure(db: sqlite3.Connection) -> None:
    # WAL lets readers proceed during writes; NORMAL sync is durable
    # across process crashes, which is what "acknowledged means durable" needs.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=5000")
    version = _schema_version(db)
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"database schema {version} is newer than this build understands ({SCHEMA_VERSION})")
    for number in range(version, SCHEMA_VERSION):
        db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;")


def _schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0]) if row else 0


class SqliteStore(SqliteResults, HistoryQueries, sqlite_webhooks.WebhookQueries):
    """The default store. Results (checksums, share links, plans), history (exports, stats) and webhooks are in
    the mixins."""

    def __init__(self, thread: SqliteThread) -> None:
        self._thread = thread

    @classmethod
    async def open(cls, path: Path | str) -> SqliteStore:
        """Open (creating and migrating) the store; StoreUnavailableError if the file cannot be opened or written."""
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            thread = SqliteThread(lambda: _connect(str(path)))
            await thread.start()
        except (sqlite3.OperationalError, OSError) as error:
            raise StoreUnavailableError(f"cannot open the store {path}: {error}") from error
        try:
            await thread.read(_configure)
        except StoreUnavailableError as error:
            await thread.close()
            raise StoreUnavailableError(f"cannot prepare the store {path}: {error}") from error
        except BaseException:
            await thread.close()
            raise
        store = cls(thread)
        await thread.read(store._note_webhooks)
        return store

    async def close(self) -> None:
        await self._thread.close()

    async def probe(self) -> None:
        def probe(db: sqlite3.Connection, at: int) -> None:
            db.execute("INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, ?)", (at,))

        await self._thread.write(probe, micros(datetime.now(UTC)))

    async def schema_version(self) -> int:
        return await self._thread.read(_schema_version)

    # API keys

    async def add_api_key(self, key_hash: str, role: Role, owner_id: str, now: datetime) -> Principal:
        principal = Principal(key_id=key_id(key_hash), role=role, owner_id=owner_id)

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO api_keys (key_hash, key_id, role, owner_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_hash, principal.key_id, role.value, owner_id, micros(now)),
            )

        await self._thread.write(insert)
        return principal

    async def principal_for(self, key_hash: str) -> Principal | None:
        def find(db: sqlite3.Connection) -> Principal | None:
            sql = "SELECT key_id, role, owner_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"
            row = db.execute(sql, (key_hash,)).fetchone()
            if row is None:
                return None
            return Principal(key_id=row["key_id"], role=Role(row["role"]), owner_id=row["owner_id"])

        return await self._thread.read(find)

    async def api_keys(self, *, owner_id: str | None) -> list[ApiKeyRecord]:
        where, args = ("WHERE owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
        sql = f"SELECT {KEY_COLUMNS} FROM api_keys {where} ORDER BY created_at, key_id"

        def read(db: sqlite3.Connection) -> list[ApiKeyRecord]:
            return [key_from_row(row) for row in db.execute(sql, args).fetchall()]

        return await self._thread.read(read)

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return await self._thread.read(_find_key, key_id)

    async def revoke_api_key(self, key_id: str, now: datetime) -> ApiKeyRecord | None:
        def revoke(db: sqlite3.Connection) -> ApiKeyRecord | None:
            sql = "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
            db.execute(sql, (micros(now), key_id))
            return _find_key(db, key_id)

        return await self._thread.write(revoke)

    async def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        rows = [(micros(moment), key_id) for key_id, moment in last_used.items()]

        def record(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE key_id = ?", rows
            )

        await self._thread.write(record)

    # Jobs

    async def create_job(self, job: JobRecord, first_event: JobEvent, hold: HoldRequest | None = None) -> JobRecord:
        return await self._thread.write(sqlite_jobs.create_job, job, first_event, hold)

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._thread.read(sqlite_jobs.get_job, job_id)

    async def job_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        return await self._thread.read(sqlite_jobs.find_by_idempotency_key, owner_id, key)

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
        return await self._thread.read(sqlite_jobs.list_jobs, job_filter, limit, page_token)

    async def unfinished_jobs(self) -> list[JobRecord]:
        return await self._thread.read(sqlite_jobs.unfinished_jobs)

    async def unfinished_events(self) -> dict[str, list[JobEvent]]:
        return await self._thread.read(sqlite_jobs.unfinished_events)

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
        try:
            return await self._thread.write(
                sqlite_jobs.transition, job_id, from_states, attempt, to, changes, now, event, settle, self._ended
            )
        except sqlite_jobs.LostRace:
            return None  # rolled back with its savepoint

    def _ended(self, db: sqlite3.Connection, job_id: str, state: JobState, now: datetime) -> None:
        """In a terminal transition's transaction: queue its webhook deliveries (none while no webhook exists)."""
        if self._any_webhooks:
            sqlite_webhooks.enqueue_job_event(db, job_id, state, now)

    # Accounts and the ledger

    async def credit(self, account_id: str, amount: int, *, tx_id: str, now: datetime) -> AccountRecord:
        def credit(db: sqlite3.Connection) -> AccountRecord:
            sqlite_ledger.credit(db, account_id, amount, tx_id, now)
            return sqlite_ledger.read_account(db, account_id)

        return await self._thread.write(credit)

    async def account(self, account_id: str) -> AccountRecord:
        return await self._thread.read(sqlite_ledger.read_account, account_id)

    async def accounts(self) -> list[AccountRecord]:
        sql = f"SELECT {sqlite_ledger.ACCOUNT_COLUMNS} FROM accounts ORDER BY account_id"

        def read(db: sqlite3.Connection) -> list[AccountRecord]:
            return [sqlite_ledger.account_from_row(row) for row in db.execute(sql).fetchall()]

        return await self._thread.read(read)

    async def receipt(self, receipt_id: str) -> Receipt | None:
        return await self._thread.read(sqlite_ledger.read_receipt, receipt_id)

    async def receipts(self, *, client: str | None, limit: int) -> list[Receipt]:
        return await self._thread.read(sqlite_ledger.read_receipts, client, limit)

    async def receipts_before(self, *, before_seq: int | None, limit: int) -> list[tuple[int, Receipt]]:
        return await self._thread.read(sqlite_ledger.read_receipts_before, before_seq, limit)

    async def seal_block(self, build: BlockBuilder, *, max_transactions: int, now: datetime) -> Block | None:
        # `build` (signing the block) runs on the store's thread, inside the transaction that stores it.
        return await self._thread.write(sqlite_blocks.seal, build, max_transactions, micros(now))

    async def receipt_block(self, receipt_id: str) -> int | None:
        return await self._thread.read(sqlite_blocks.receipt_block, receipt_id)

    async def blocks(self, *, from_height: int = 0, limit: int = 100) -> list[Block]:
        return await self._thread.read(sqlite_blocks.read_blocks, from_height, limit)

    async def ledger_stats(self) -> LedgerStats:
        return await self._thread.read(sqlite_blocks.read_stats)

    async def job_totals(self, *, since: Sequence[datetime]) -> JobTotals:
        return await self._thread.read(sqlite_stats.read_job_totals, [micros(moment) for moment in since])

    async def ledger(self, *, after_seq: int = 0, limit: int = 1000) -> list[LedgerEntry]:
        return await self._thread.read(sqlite_ledger.read_ledger, after_seq, limit)

    async def ledger_before(self, *, before_seq: int | None, limit: int) -> list[LedgerEntry]:
        return await self._thread.read(sqlite_ledger.read_ledger_before, before_seq, limit)

    # Miners

    async def miners(self) -> list[MinerRecord]:
        return await self._thread.read(sqlite_miners.read_miners)

    async def miner(self, miner_id: str) -> MinerRecord | None:
        return await self._thread.read(sqlite_miners.read_miner, miner_id)

    async def save_miners(self, miners: Sequence[MinerRecord]) -> None:
        await self._thread.write(sqlite_miners.write_miners, miners)

    # Events

    async def append_events(self, events: Sequence[JobEvent]) -> None:
        await self._thread.write(sqlite_jobs.insert_output, events)

    async def events(self, job_id: str, *, from_seq: int = 1) -> list[JobEvent]:
        return await self._thread.read(sqlite_jobs.read_events, job_id, from_seq)


def _find_key(db: sqlite3.Connection, key_id: str) -> ApiKeyRecord | None:
    row = db.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
    return None if row is None else key_from_row(row)
