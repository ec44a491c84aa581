"""Webhooks and their delivery outbox in SQLite; a mixin of `SqliteStore`.

`enqueue_job_event` runs inside the store's transition transaction: a job's terminal state and the
deliveries announcing it commit together, so a crash can lose neither one without the other.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from aitbc.domain.states import JobState
from aitbc.domain.webhooks import JOB_EVENTS, DeliveryRecord, DeliveryStatus, WebhookRecord
from aitbc.store.sqlite_rows import Row, micros, moment
from aitbc.store.sqlite_thread import SqliteThread

WEBHOOK_COLUMNS = "webhook_id, owner_id, url, events, signing_key, created_at"
DELIVERY_COLUMNS = (
    "delivery_id, webhook_id, event, job_id, payload, status, attempts, last_status_code, last_latency_ms,"
    " last_error, created_at, next_attempt_at, delivered_at"
)
_RFC3339 = "strftime('%Y-%m-%dT%H:%M:%fZ', {} / 1000000.0, 'unixepoch')"

# One delivery per webhook of the job's owner that asked for the event, its payload built from the job row as
# the transition left it. The id is made in Python per row would need a round trip per webhook; SQLite's
# randomblob gives each row its own 96 random bits.
_ENQUEUE_JOB_EVENT = f"""
INSERT INTO webhook_deliveries (delivery_id, webhook_id, event, job_id, payload, status, created_at, next_attempt_at)
SELECT 'evt_' || lower(hex(randomblob(12))), w.webhook_id, :event, j.job_id,
    json_object(
        'type', :event,
        'created_at', {_RFC3339.format(":now")},
        'data', json_object(
            'job_id', j.job_id, 'status', j.state, 'model', j.model, 'error', j.error,
            'finish_reason', j.finish_reason, 'miner_id', j.miner_id, 'attempt', j.attempt,
            'usage', json_object('prompt_tokens', j.prompt_tokens, 'completion_tokens', j.completion_tokens),
            'receipt_id', j.receipt_id,
            'created_at', {_RFC3339.format("j.created_at")},
            'completed_at', {_RFC3339.format("j.completed_at")}
        )
    ),
    'pending', :now, :now
FROM jobs AS j JOIN webhooks AS w ON w.owner_id = j.owner_id
WHERE j.job_id = :job_id AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = :event)
"""


def enqueue_job_event(db: sqlite3.Connection, job_id: str, state: JobState, now: datetime) -> None:
    """Queue the deliveries of a job's terminal state, in the caller's transaction."""
    event = JOB_EVENTS.get(state)
    if event is not None:
        db.execute(_ENQUEUE_JOB_EVENT, {"event": event, "now": micros(now), "job_id": job_id})


def webhook_from_row(row: Row) -> WebhookRecord:
    created_at = moment(row["created_at"])
    assert created_at is not None
    return WebhookRecord(
        webhook_id=row["webhook_id"],
        owner_id=row["owner_id"],
        url=row["url"],
        events=tuple(json.loads(row["events"])),
        secret=row["signing_key"],
        created_at=created_at,
    )


def delivery_from_row(row: Row) -> DeliveryRecord:
    created_at = moment(row["created_at"])
    assert created_at is not None
    return DeliveryRecord(
        delivery_id=row["delivery_id"],
        webhook_id=row["webhook_id"],
        event=row["event"],
        job_id=row["job_id"],
        payload=row["payload"],
        status=DeliveryStatus(row["status"]),
        created_at=created_at,
        attempts=row["attempts"],
        last_status_code=row["last_status_code"],
        last_latency_ms=row["last_latency_ms"],
        last_error=row["last_error"],
        next_attempt_at=moment(row["next_attempt_at"]),
        delivered_at=moment(row["delivered_at"]),
    )


# Pending deliveries due by a time, oldest due first, each with its webhook's columns prefixed `w_`.
_HOOK_COLUMNS = ", ".join(
    f"w.{name.strip()} AS w_{name.strip()}" for name in WEBHOOK_COLUMNS.split(",") if name.strip() != "webhook_id"
)
DUE_DELIVERIES = (
    f"SELECT {', '.join(f'd.{name.strip()}' for name in DELIVERY_COLUMNS.split(','))}, {_HOOK_COLUMNS}"
    " FROM webhook_deliveries AS d JOIN webhooks AS w USING (webhook_id)"
    " WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ?"
)


def due_from_row(row: Row) -> tuple[DeliveryRecord, WebhookRecord]:
    """A row of DUE_DELIVERIES: the delivery and its webhook."""
    created_at = moment(row["w_created_at"])
    assert created_at is not None
    hook = WebhookRecord(
        webhook_id=row["webhook_id"],
        owner_id=row["w_owner_id"],
        url=row["w_url"],
        events=tuple(json.loads(row["w_events"])),
        secret=row["w_signing_key"],
        created_at=created_at,
    )
    return delivery_from_row(row), hook


def any_webhooks(db: sqlite3.Connection) -> bool:
    return bool(db.execute("SELECT EXISTS (SELECT 1 FROM webhooks)").fetchone()[0])


class WebhookQueries:
    """The webhook methods of `Store` for `SqliteStore`."""

    _thread: SqliteThread
    # Whether any webhook exists: while none does, a terminal transition skips the outbox statement. One
    # process owns the file, so creating and deleting here keep it true; it is only read and written on the
    # store's thread.
    _any_webhooks = True

    def _note_webhooks(self, db: sqlite3.Connection) -> None:
        self._any_webhooks = any_webhooks(db)

    def may_queue_deliveries(self) -> bool:
        return self._any_webhooks

    async def _rows(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        def read(db: sqlite3.Connection) -> list[sqlite3.Row]:
            return db.execute(sql, args).fetchall()

        return await self._thread.read(read)

    async def create_webhook(self, webhook: WebhookRecord) -> None:
        def create(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    webhook.webhook_id,
                    webhook.owner_id,
                    webhook.url,
                    json.dumps(list(webhook.events)),
                    webhook.secret,
                    micros(webhook.created_at),
                ),
            )
            self._any_webhooks = True

        await self._thread.write(create)

    async def webhooks(self, owner_id: str | None) -> list[WebhookRecord]:
        where, args = ("WHERE owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
        rows = await self._rows(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks {where} ORDER BY created_at, webhook_id", args)
        return [webhook_from_row(row) for row in rows]

    async def webhook(self, webhook_id: str) -> WebhookRecord | None:
        rows = await self._rows(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = ?", (webhook_id,))
        return webhook_from_row(rows[0]) if rows else None

    async def delete_webhook(self, webhook_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            deleted = db.execute("DELETE FROM webhooks WHERE webhook_id = ?", (webhook_id,)).rowcount > 0
            self._note_webhooks(db)
            return deleted

        return await self._thread.write(delete)

    async def enqueue_delivery(self, delivery: DeliveryRecord) -> None:
        def enqueue(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO webhook_deliveries (delivery_id, webhook_id, event, job_id, payload, status, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                (
                    delivery.delivery_id,
                    delivery.webhook_id,
                    delivery.event,
                    delivery.job_id,
                    delivery.payload,
                    micros(delivery.created_at),
                    micros(delivery.next_attempt_at or delivery.created_at),
                ),
            )

        await self._thread.write(enqueue)

    async def due_deliveries(self, now: datetime, limit: int) -> list[tuple[DeliveryRecord, WebhookRecord]]:
        rows = await self._rows(DUE_DELIVERIES, (micros(now), limit))
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
        delivered = micros(now) if status is DeliveryStatus.DELIVERED else None

        def record(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status_code = ?,"
                " last_latency_ms = ?, last_error = ?, next_attempt_at = ?, delivered_at = ?"
                " WHERE delivery_id = ? AND status = 'pending'",
                (
                    status.value,
                    status_code,
                    latency_ms,
                    error,
                    micros(next_attempt_at) if next_attempt_at else None,
                    delivered,
                    delivery_id,
                ),
            )

        await self._thread.write(record)

    async def deliveries(self, webhook_id: str, limit: int) -> list[DeliveryRecord]:
        rows = await self._rows(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?"
            " ORDER BY created_at DESC, delivery_id DESC LIMIT ?",
            (webhook_id, limit),
        )
        return [delivery_from_row(row) for row in rows]

    async def prune_deliveries(self, before: datetime) -> int:
        def prune(db: sqlite3.Connection) -> int:
            sql = "DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_at < ?"
            return int(db.execute(sql, (micros(before),)).rowcount)

        return await self._thread.write(prune)
