"""The SQLite side of `ResultStore`: a mixin of `SqliteStore`, over its connection, lock and transactions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta

import aiosqlite

from aitbc.domain.jobs import JobRecord
from aitbc.domain.retention import Plan
from aitbc.store.result_records import ResultChecksums, ShareLinkRecord
from aitbc.store.sqlite_rows import JOB_COLUMNS, job_from_row, micros, moment

_LINK_COLUMNS = "share_id, token_hash, job_id, owner_id, created_at, expires_at, revoked_at"
_FINISHED = "('completed', 'failed', 'canceled')"


def _link_from_row(row: aiosqlite.Row) -> ShareLinkRecord:
    created_at = moment(row["created_at"])
    expires_at = moment(row["expires_at"])
    assert created_at is not None
    assert expires_at is not None
    return ShareLinkRecord(
        share_id=row["share_id"],
        token_hash=row["token_hash"],
        job_id=row["job_id"],
        owner_id=row["owner_id"],
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=moment(row["revoked_at"]),
    )


class SqliteResults:
    """`ResultStore` for `SqliteStore`, which provides the connection and the transaction helpers."""

    _db: aiosqlite.Connection
    _lock: asyncio.Lock

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def _reading(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def record_checksums(self, job_id: str, files: Mapping[str, str], now: datetime) -> ResultChecksums:
        async with self._transaction():
            await self._db.execute(
                "INSERT OR IGNORE INTO result_checksums (job_id, files, recorded_at) VALUES (?, ?, ?)",
                (job_id, json.dumps(dict(files), sort_keys=True), micros(now)),
            )
            stored = await self._checksums(job_id)
        assert stored is not None
        return stored

    async def result_checksums(self, job_id: str) -> ResultChecksums | None:
        async with self._reading():
            return await self._checksums(job_id)

    async def _checksums(self, job_id: str) -> ResultChecksums | None:
        sql = "SELECT job_id, files, recorded_at FROM result_checksums WHERE job_id = ?"
        async with self._db.execute(sql, (job_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        recorded_at = moment(row["recorded_at"])
        assert recorded_at is not None
        return ResultChecksums(job_id=row["job_id"], files=json.loads(row["files"]), recorded_at=recorded_at)

    async def delete_result(self, job_id: str, now: datetime) -> JobRecord | None:
        at = micros(now)
        async with self._transaction():
            # Times, token counts, state, error and receipt id stay: history, stats and the ledger still add up.
            await self._db.execute(
                "UPDATE jobs SET prompt = '', messages = '[]', result = '', result_deleted_at = ?"
                f" WHERE job_id = ? AND state IN {_FINISHED} AND result_deleted_at IS NULL",
                (at, job_id),
            )
            # The logs: each chunk's text goes, its time, attempt and token count stay (sequence numbers too).
            await self._db.execute("UPDATE job_events SET text = '' WHERE job_id = ? AND kind = 'tokens'", (job_id,))
            await self._db.execute(
                "UPDATE share_links SET revoked_at = ? WHERE job_id = ? AND revoked_at IS NULL", (at, job_id)
            )
            sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ? AND state IN {_FINISHED}"
            async with self._db.execute(sql, (job_id,)) as cursor:
                row = await cursor.fetchone()
        return None if row is None else job_from_row(row)

    async def expired_results(
        self, now: datetime, retention: Mapping[Plan, timedelta], default_plan: Plan, limit: int
    ) -> list[str]:
        cases = " ".join(f"WHEN '{plan.value}' THEN ?" for plan in retention)
        kept = [int(period.total_seconds() * 1_000_000) for period in retention.values()]
        sql = (
            "SELECT jobs.job_id FROM jobs LEFT JOIN account_plans ON account_plans.account_id = jobs.owner_id"
            f" WHERE jobs.state IN {_FINISHED} AND jobs.result_deleted_at IS NULL"
            f" AND COALESCE(jobs.completed_at, jobs.updated_at) + (CASE COALESCE(account_plans.plan, ?) {cases} END)"
            " <= ? ORDER BY jobs.completed_at LIMIT ?"
        )
        async with self._reading(), self._db.execute(sql, (default_plan.value, *kept, micros(now), limit)) as cursor:
            rows = await cursor.fetchall()
        return [row["job_id"] for row in rows]

    async def account_plans(self) -> dict[str, Plan]:
        async with self._reading(), self._db.execute("SELECT account_id, plan FROM account_plans") as cursor:
            rows = await cursor.fetchall()
        return {row["account_id"]: Plan(row["plan"]) for row in rows}

    async def set_account_plan(self, account_id: str, plan: Plan, now: datetime) -> None:
        async with self._transaction():
            await self._db.execute(
                "INSERT INTO account_plans (account_id, plan, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (account_id) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at",
                (account_id, plan.value, micros(now)),
            )

    async def add_share_link(self, link: ShareLinkRecord) -> None:
        async with self._transaction():
            await self._db.execute(
                f"INSERT INTO share_links ({_LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    link.share_id,
                    link.token_hash,
                    link.job_id,
                    link.owner_id,
                    micros(link.created_at),
                    micros(link.expires_at),
                    micros(link.revoked_at) if link.revoked_at else None,
                ),
            )

    async def share_link(self, token_hash: str) -> ShareLinkRecord | None:
        sql = f"SELECT {_LINK_COLUMNS} FROM share_links WHERE token_hash = ?"
        async with self._reading(), self._db.execute(sql, (token_hash,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _link_from_row(row)

    async def share_links(self, job_id: str) -> list[ShareLinkRecord]:
        sql = f"SELECT {_LINK_COLUMNS} FROM share_links WHERE job_id = ? ORDER BY created_at DESC, share_id"
        async with self._reading(), self._db.execute(sql, (job_id,)) as cursor:
            rows = await cursor.fetchall()
        return [_link_from_row(row) for row in rows]

    async def revoke_share_link(self, share_id: str, now: datetime) -> ShareLinkRecord | None:
        async with self._transaction():
            await self._db.execute(
                "UPDATE share_links SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL",
                (micros(now), share_id),
            )
            sql = f"SELECT {_LINK_COLUMNS} FROM share_links WHERE share_id = ?"
            async with self._db.execute(sql, (share_id,)) as cursor:
                row = await cursor.fetchone()
        return None if row is None else _link_from_row(row)
