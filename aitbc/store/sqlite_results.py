"""The SQLite side of `ResultStore`: a mixin of `SqliteStore`, over its thread."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta

from aitbc.domain.jobs import JobRecord
from aitbc.domain.retention import Plan
from aitbc.store.result_records import ResultChecksums, ShareLinkRecord
from aitbc.store.sqlite_rows import JOB_COLUMNS, Row, job_from_row, micros, moment
from aitbc.store.sqlite_thread import SqliteThread

LINK_COLUMNS = "share_id, token_hash, job_id, owner_id, created_at, expires_at, revoked_at"
FINISHED_STATES = "('completed', 'failed', 'canceled')"


def link_from_row(row: Row) -> ShareLinkRecord:
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
    """`ResultStore` for `SqliteStore`, which provides the store's thread."""

    _thread: SqliteThread

    async def record_checksums(self, job_id: str, files: Mapping[str, str], now: datetime) -> ResultChecksums:
        def record(db: sqlite3.Connection) -> ResultChecksums | None:
            db.execute(
                "INSERT OR IGNORE INTO result_checksums (job_id, files, recorded_at) VALUES (?, ?, ?)",
                (job_id, json.dumps(dict(files), sort_keys=True), micros(now)),
            )
            return _checksums(db, job_id)

        stored = await self._thread.write(record)
        assert stored is not None
        return stored

    async def result_checksums(self, job_id: str) -> ResultChecksums | None:
        return await self._thread.read(_checksums, job_id)

    async def delete_result(self, job_id: str, now: datetime) -> JobRecord | None:
        at = micros(now)

        def delete(db: sqlite3.Connection) -> JobRecord | None:
            # Times, token counts, state, error and receipt id stay: history, stats and the ledger still add up.
            db.execute(
                "UPDATE jobs SET prompt = '', messages = '[]', result = '', result_deleted_at = ?"
                f" WHERE job_id = ? AND state IN {FINISHED_STATES} AND result_deleted_at IS NULL",
                (at, job_id),
            )
            # The logs: each chunk's text goes, its time, attempt and token count stay (sequence numbers too).
            db.execute("UPDATE job_events SET text = '' WHERE job_id = ? AND kind = 'tokens'", (job_id,))
            db.execute("UPDATE share_links SET revoked_at = ? WHERE job_id = ? AND revoked_at IS NULL", (at, job_id))
            sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ? AND state IN {FINISHED_STATES}"
            row = db.execute(sql, (job_id,)).fetchone()
            return None if row is None else job_from_row(row)

        return await self._thread.write(delete)

    async def expired_results(
        self, now: datetime, retention: Mapping[Plan, timedelta], default_plan: Plan, limit: int
    ) -> list[str]:
        cases = " ".join(f"WHEN '{plan.value}' THEN ?" for plan in retention)
        kept = [int(period.total_seconds() * 1_000_000) for period in retention.values()]
        sql = (
            "SELECT jobs.job_id FROM jobs LEFT JOIN account_plans ON account_plans.account_id = jobs.owner_id"
            f" WHERE jobs.state IN {FINISHED_STATES} AND jobs.result_deleted_at IS NULL"
            f" AND COALESCE(jobs.completed_at, jobs.updated_at) + (CASE COALESCE(account_plans.plan, ?) {cases} END)"
            " <= ? ORDER BY jobs.completed_at LIMIT ?"
        )

        def read(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(sql, (default_plan.value, *kept, micros(now), limit)).fetchall()
            return [row["job_id"] for row in rows]

        return await self._thread.read(read)

    async def account_plans(self) -> dict[str, Plan]:
        def read(db: sqlite3.Connection) -> dict[str, Plan]:
            rows = db.execute("SELECT account_id, plan FROM account_plans").fetchall()
            return {row["account_id"]: Plan(row["plan"]) for row in rows}

        return await self._thread.read(read)

    async def set_account_plan(self, account_id: str, plan: Plan, now: datetime) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO account_plans (account_id, plan, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (account_id) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at",
                (account_id, plan.value, micros(now)),
            )

        await self._thread.write(write)

    async def add_share_link(self, link: ShareLinkRecord) -> None:
        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO share_links ({LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
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

        await self._thread.write(insert)

    async def share_link(self, token_hash: str) -> ShareLinkRecord | None:
        sql = f"SELECT {LINK_COLUMNS} FROM share_links WHERE token_hash = ?"

        def read(db: sqlite3.Connection) -> ShareLinkRecord | None:
            row = db.execute(sql, (token_hash,)).fetchone()
            return None if row is None else link_from_row(row)

        return await self._thread.read(read)

    async def share_links(self, job_id: str) -> list[ShareLinkRecord]:
        sql = f"SELECT {LINK_COLUMNS} FROM share_links WHERE job_id = ? ORDER BY created_at DESC, share_id"

        def read(db: sqlite3.Connection) -> list[ShareLinkRecord]:
            return [link_from_row(row) for row in db.execute(sql, (job_id,)).fetchall()]

        return await self._thread.read(read)

    async def revoke_share_link(self, share_id: str, now: datetime) -> ShareLinkRecord | None:
        def revoke(db: sqlite3.Connection) -> ShareLinkRecord | None:
            sql = "UPDATE share_links SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL"
            db.execute(sql, (micros(now), share_id))
            row = db.execute(f"SELECT {LINK_COLUMNS} FROM share_links WHERE share_id = ?", (share_id,)).fetchone()
            return None if row is None else link_from_row(row)

        return await self._thread.write(revoke)


def _checksums(db: sqlite3.Connection, job_id: str) -> ResultChecksums | None:
    sql = "SELECT job_id, files, recorded_at FROM result_checksums WHERE job_id = ?"
    row = db.execute(sql, (job_id,)).fetchone()
    if row is None:
        return None
    recorded_at = moment(row["recorded_at"])
    assert recorded_at is not None
    return ResultChecksums(job_id=row["job_id"], files=json.loads(row["files"]), recorded_at=recorded_at)
