"""Results, history and webhooks for `PostgresStore`: mixins over its connections, as SQLite's are over its
thread (`sqlite_results`, `sqlite_history`, `sqlite_webhooks`), reusing their filters and row conversions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aitbc.domain.history import JobFilter, JobStatsRecord, nearest_rank
from aitbc.domain.jobs import JobRecord
from aitbc.domain.retention import Plan
from aitbc.domain.states import JobState
from aitbc.domain.webhooks import JOB_EVENTS, DeliveryRecord, DeliveryStatus, WebhookRecord
from aitbc.store.postgres_pool import Connections, pg
from aitbc.store.result_records import ResultChecksums, ShareLinkRecord
from aitbc.store.sqlite_history import filter_clauses, where
from aitbc.store.sqlite_results import FINISHED_STATES, LINK_COLUMNS, link_from_row
from aitbc.store.sqlite_rows import JOB_COLUMNS, job_from_row, micros, moment
from aitbc.store.sqlite_webhooks import (
    DELIVERY_COLUMNS,
    DUE_DELIVERIES,
    WEBHOOK_COLUMNS,
    delivery_from_row,
    due_from_row,
    webhook_from_row,
)

Connection = Any  # asyncpg.Connection

_COMPLETION_MICROS = "(completed_at - created_at)"


class PostgresResults:
    """`ResultStore` for `PostgresStore`."""

    _db: Connections

    async def record_checksums(self, job_id: str, files: Mapping[str, str], now: datetime) -> ResultChecksums:
        async with self._db.write() as db:
            await db.execute(
                pg(
                    "INSERT INTO result_checksums (job_id, files, recorded_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (job_id) DO NOTHING"
                ),
                job_id,
                json.dumps(dict(files), sort_keys=True),
                micros(now),
            )
            stored = await _checksums(db, job_id)
        assert stored is not None
        return stored

    async def result_checksums(self, job_id: str) -> ResultChecksums | None:
        async with self._db.read() as db:
            return await _checksums(db, job_id)

    async def delete_result(self, job_id: str, now: datetime) -> JobRecord | None:
        at = micros(now)
        async with self._db.write() as db:
            await db.execute(
                pg(
                    "UPDATE jobs SET prompt = '', messages = '[]', result = '', result_deleted_at = ?"
                    f" WHERE job_id = ? AND state IN {FINISHED_STATES} AND result_deleted_at IS NULL"
                ),
                at,
                job_id,
            )
            await db.execute(pg("UPDATE job_events SET text = '' WHERE job_id = ? AND kind = 'tokens'"), job_id)
            await db.execute(
                pg("UPDATE share_links SET revoked_at = ? WHERE job_id = ? AND revoked_at IS NULL"), at, job_id
            )
            row = await db.fetchrow(
                pg(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ? AND state IN {FINISHED_STATES}"), job_id
            )
        return None if row is None else job_from_row(row)

    async def expired_results(
        self, now: datetime, retention: Mapping[Plan, timedelta], default_plan: Plan, limit: int
    ) -> list[str]:
        cases = " ".join(f"WHEN '{plan.value}' THEN ?::bigint" for plan in retention)
        kept = [int(period.total_seconds() * 1_000_000) for period in retention.values()]
        sql = pg(
            "SELECT jobs.job_id FROM jobs LEFT JOIN account_plans ON account_plans.account_id = jobs.owner_id"
            f" WHERE jobs.state IN {FINISHED_STATES} AND jobs.result_deleted_at IS NULL"
            f" AND COALESCE(jobs.completed_at, jobs.updated_at) + (CASE COALESCE(account_plans.plan, ?::text) {cases}"
            " END) <= ? ORDER BY jobs.completed_at LIMIT ?"
        )
        async with self._db.read() as db:
            rows = await db.fetch(sql, default_plan.value, *kept, micros(now), limit)
        return [row["job_id"] for row in rows]

    async def account_plans(self) -> dict[str, Plan]:
        async with self._db.read() as db:
            rows = await db.fetch("SELECT account_id, plan FROM account_plans")
        return {row["account_id"]: Plan(row["plan"]) for row in rows}

    async def set_account_plan(self, account_id: str, plan: Plan, now: datetime) -> None:
        async with self._db.write() as db:
            await db.execute(
                pg(
                    "INSERT INTO account_plans (account_id, plan, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (account_id) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at"
                ),
                account_id,
                plan.value,
                micros(now),
            )

    async def add_share_link(self, link: ShareLinkRecord) -> None:
        async with self._db.write() as db:
            await db.execute(
                pg(f"INSERT INTO share_links ({LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                link.share_id,
                link.token_hash,
                link.job_id,
                link.owner_id,
                micros(link.created_at),
                micros(link.expires_at),
                micros(link.revoked_at) if link.revoked_at else None,
            )

    async def share_link(self, token_hash: str) -> ShareLinkRecord | None:
        async with self._db.read() as db:
            row = await db.fetchrow(pg(f"SELECT {LINK_COLUMNS} FROM share_links WHERE token_hash = ?"), token_hash)
        return None if row is None else link_from_row(row)

    async def share_links(self, job_id: str) -> list[ShareLinkRecord]:
        sql = pg(f"SELECT {LINK_COLUMNS} FROM share_links WHERE job_id = ? ORDER BY created_at DESC, share_id")
        async with self._db.read() as db:
            return [link_from_row(row) for row in await db.fetch(sql, job_id)]

    async def revoke_share_link(self, share_id: str, now: datetime) -> ShareLinkRecord | None:
        async with self._db.write() as db:
            await db.execute(
                pg("UPDATE share_links SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL"),
                micros(now),
                share_id,
            )
            row = await db.fetchrow(pg(f"SELECT {LINK_COLUMNS} FROM share_links WHERE share_id = ?"), share_id)
        return None if row is None else link_from_row(row)


async def _checksums(db: Connection, job_id: str) -> ResultChecksums | None:
    row = await db.fetchrow(pg("SELECT job_id, files, recorded_at FROM result_checksums WHERE job_id = ?"), job_id)
    if row is None:
        return None
    recorded_at = moment(row["recorded_at"])
    assert recorded_at is not None
    return ResultChecksums(job_id=row["job_id"], files=json.loads(row["files"]), recorded_at=recorded_at)


class PostgresHistory:
    """`Store.export_page` and `Store.job_stats` for `PostgresStore`, with SQLite's filters."""

    _db: Connections

    async def export_page(
        self, job_filter: JobFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[JobRecord, int]]:
        clauses, args = filter_clauses(job_filter, after)
        sql = pg(
            f"SELECT {JOB_COLUMNS}, (SELECT COALESCE(charge, 0) FROM holds WHERE holds.job_id = jobs.job_id) AS cost"
            f" FROM jobs {where(clauses)} ORDER BY created_at DESC, job_id DESC LIMIT ?"
        )
        async with self._db.read() as db:
            rows = await db.fetch(sql, *args, limit)
        return [(job_from_row(row), int(row["cost"] or 0)) for row in rows]

    async def job_stats(self, job_filter: JobFilter) -> JobStatsRecord:
        clauses, args = filter_clauses(job_filter)
        counts_sql = pg(
            "SELECT state, COUNT(*) AS jobs, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            f" COALESCE(SUM(completion_tokens), 0) AS completion_tokens FROM jobs {where(clauses)} GROUP BY state"
        )
        spent_sql = pg(
            "SELECT COALESCE(SUM(charge), 0) FROM holds WHERE settled_attempt IS NOT NULL"
            f" AND job_id IN (SELECT job_id FROM jobs {where(clauses)})"
        )
        done = [*clauses, "state = 'completed'", "completed_at IS NOT NULL"]
        times_sql = pg(f"SELECT COUNT(*), AVG({_COMPLETION_MICROS}) FROM jobs {where(done)}")
        rank_sql = pg(f"SELECT {_COMPLETION_MICROS} FROM jobs {where(done)} ORDER BY 1 LIMIT 1 OFFSET ?")
        async with self._db.snapshot() as db:
            rows = await db.fetch(counts_sql, *args)
            spent = await db.fetchval(spent_sql, *args)
            times = await db.fetchrow(times_sql, *args)
            completed = int(times[0])
            percentiles = []
            for fraction in (0.5, 0.95):
                ranked = await db.fetchval(rank_sql, *args, nearest_rank(fraction, completed)) if completed else None
                percentiles.append(int(ranked) / 1e6 if ranked is not None else 0.0)
        return JobStatsRecord(
            counts={JobState(row["state"]): int(row["jobs"]) for row in rows},
            prompt_tokens=sum(int(row["prompt_tokens"]) for row in rows),
            completion_tokens=sum(int(row["completion_tokens"]) for row in rows),
            total_spent=int(spent),
            mean_completion_seconds=float(times[1]) / 1e6 if times[1] is not None else 0.0,
            p50_completion_seconds=percentiles[0],
            p95_completion_seconds=percentiles[1],
        )


_RFC3339 = """to_char(to_timestamp({} / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
# SQLite's outbox insert (sqlite_webhooks._ENQUEUE_JOB_EVENT) in PostgreSQL: one delivery per webhook of the
# job's owner that asked for the event, its payload built from the job row as the transition left it.
_ENQUEUE_JOB_EVENT = f"""
INSERT INTO webhook_deliveries (delivery_id, webhook_id, event, job_id, payload, status, created_at, next_attempt_at)
SELECT 'evt_' || left(replace(gen_random_uuid()::text, '-', ''), 24), w.webhook_id, $1::text, j.job_id,
    json_build_object(
        'type', $1::text,
        'created_at', {_RFC3339.format("$2::bigint")},
        'data', json_build_object(
            'job_id', j.job_id, 'status', j.state, 'model', j.model, 'error', j.error,
            'finish_reason', j.finish_reason, 'miner_id', j.miner_id, 'attempt', j.attempt,
            'usage', json_build_object('prompt_tokens', j.prompt_tokens, 'completion_tokens', j.completion_tokens),
            'receipt_id', j.receipt_id,
            'created_at', {_RFC3339.format("j.created_at")},
            'completed_at', {_RFC3339.format("j.completed_at")}
        )
    )::text,
    'pending', $2::bigint, $2::bigint
FROM jobs AS j JOIN webhooks AS w ON w.owner_id = j.owner_id
WHERE j.job_id = $3::text AND w.events @> jsonb_build_array($1::text)
"""


async def enqueue_job_event(db: Connection, job_id: str, state: JobState, now: datetime) -> None:
    """Queue the deliveries of a job's terminal state, in the caller's transaction."""
    event = JOB_EVENTS.get(state)
    if event is not None:
        await db.execute(_ENQUEUE_JOB_EVENT, event, micros(now), job_id)


class PostgresWebhooks:
    """The webhook methods of `Store` for `PostgresStore`."""

    _db: Connections

    def may_queue_deliveries(self) -> bool:
        return True  # another coordinator may have made the first webhook: the outbox is asked every time

    async def _rows(self, sql: str, *args: Any) -> list[Any]:
        async with self._db.read() as db:
            return list(await db.fetch(pg(sql), *args))

    async def create_webhook(self, webhook: WebhookRecord) -> None:
        async with self._db.write() as db:
            await db.execute(
                pg(f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?::jsonb, ?, ?)"),
                webhook.webhook_id,
                webhook.owner_id,
                webhook.url,
                json.dumps(list(webhook.events)),
                webhook.secret,
                micros(webhook.created_at),
            )

    async def webhooks(self, owner_id: str | None) -> list[WebhookRecord]:
        where, args = ("WHERE owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
        rows = await self._rows(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks {where} ORDER BY created_at, webhook_id", *args
        )
        return [webhook_from_row(row) for row in rows]

    async def webhook(self, webhook_id: str) -> WebhookRecord | None:
        rows = await self._rows(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = ?", webhook_id)
        return webhook_from_row(rows[0]) if rows else None

    async def delete_webhook(self, webhook_id: str) -> bool:
        async with self._db.write() as db:
            deleted = await db.fetchval(pg("DELETE FROM webhooks WHERE webhook_id = ? RETURNING 1"), webhook_id)
        return deleted is not None

    async def enqueue_delivery(self, delivery: DeliveryRecord) -> None:
        async with self._db.write() as db:
            await db.execute(
                pg(
                    "INSERT INTO webhook_deliveries (delivery_id, webhook_id, event, job_id, payload, status,"
                    " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)"
                ),
                delivery.delivery_id,
                delivery.webhook_id,
                delivery.event,
                delivery.job_id,
                delivery.payload,
                micros(delivery.created_at),
                micros(delivery.next_attempt_at or delivery.created_at),
            )

    async def due_deliveries(self, now: datetime, limit: int) -> list[tuple[DeliveryRecord, WebhookRecord]]:
        rows = await self._rows(DUE_DELIVERIES, micros(now), limit)
        return [due_from_row(row) for row in rows]

    async def next_delivery_at(self) -> datetime | None:
        rows = await self._rows("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")
        return moment(rows[0][0]) if rows else None

    async def record_delivery_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        status_code: int,
        latency_ms: int,
        error: str,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> None:
        async with self._db.write() as db:
            await db.execute(
                pg(
                    "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status_code = ?,"
                    " last_latency_ms = ?, last_error = ?, next_attempt_at = ?, delivered_at = ?"
                    " WHERE delivery_id = ? AND status = 'pending'"
                ),
                status.value,
                status_code,
                latency_ms,
                error,
                micros(next_attempt_at) if next_attempt_at else None,
                micros(now) if status is DeliveryStatus.DELIVERED else None,
                delivery_id,
            )

    async def deliveries(self, webhook_id: str, limit: int) -> list[DeliveryRecord]:
        rows = await self._rows(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?"
            " ORDER BY created_at DESC, delivery_id DESC LIMIT ?",
            webhook_id,
            limit,
        )
        return [delivery_from_row(row) for row in rows]

    async def prune_deliveries(self, before: datetime) -> int:
        async with self._db.write() as db:
            status = await db.execute(
                pg("DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_at < ?"), micros(before)
            )
        return int(str(status).rsplit(" ", 1)[-1])
