"""The `ReplicaStore` methods of `PostgresStore`: leases, take-over, the safety sweep's view, notifications."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from aitbc.domain.states import JobState
from aitbc.store.base import StoreUnavailableError
from aitbc.store.postgres_pool import STORE_FAILURES, Connections
from aitbc.store.replicas import JobHead, ReplicaRecord
from aitbc.store.sqlite_rows import moment

JOB_CHANNEL = "aitbc_job"  # payload: a job id (the trigger of migration 11 sends it for every stored event)
CANCEL_CHANNEL = "aitbc_cancel"  # payload: "job_id attempt"

_ON_MINERS = "('assigned', 'running')"
# Leases are measured on the database's clock, so the coordinators' clocks may disagree.
_NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
_UPSERT = f"""
INSERT INTO replicas (replica_id, address, started_at, lease_until, miners)
VALUES ($1, $2, {_NOW}, {_NOW} + $3, $4)
ON CONFLICT (replica_id) DO UPDATE SET address = excluded.address, lease_until = excluded.lease_until,
    miners = excluded.miners
RETURNING (xmax = 0) AS inserted
"""
_ORPHANS = f"""
SELECT j.job_id, j.attempt, j.replica_id FROM jobs AS j
WHERE j.state IN {_ON_MINERS}
  AND NOT EXISTS (SELECT 1 FROM replicas AS r WHERE r.replica_id = j.replica_id AND r.lease_until >= {_NOW})
"""
_HEADS = """
SELECT j.job_id, j.state, j.attempt, (SELECT max(e.seq) FROM job_events AS e WHERE e.job_id = j.job_id) AS last_seq
FROM jobs AS j WHERE j.state IN ('pending', 'assigned', 'running')
"""


def new_replica_id() -> str:
    """A replica id for a process that was given none: readable in logs, unique across restarts."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class PostgresReplicas:
    _db: Connections
    replica_id: str

    async def renew_replica(self, replica_id: str, *, address: str, lease_seconds: float, miners: str) -> bool:
        async with self._db.write() as db:
            inserted = await db.fetchval(_UPSERT, replica_id, address, round(lease_seconds * 1_000_000), miners)
        return not inserted

    async def leave_replica(self, replica_id: str) -> None:
        async with self._db.write() as db:
            await db.execute("DELETE FROM replica_miners WHERE replica_id = $1", replica_id)
            await db.execute("DELETE FROM replicas WHERE replica_id = $1", replica_id)

    async def publish_miners(self, replica_id: str, changed: Mapping[str, str], gone: Collection[str]) -> None:
        async with self._db.write() as db:
            if changed:
                await db.executemany(
                    "INSERT INTO replica_miners (miner_id, replica_id, summary) VALUES ($1, $2, $3) ON CONFLICT"
                    " (miner_id) DO UPDATE SET replica_id = excluded.replica_id, summary = excluded.summary",
                    [(miner_id, replica_id, summary) for miner_id, summary in changed.items()],
                )
            if gone:
                await db.execute(
                    "DELETE FROM replica_miners WHERE replica_id = $1 AND miner_id = ANY($2::text[])",
                    replica_id,
                    list(gone),
                )
            await db.execute(
                "UPDATE replicas SET roster_version = roster_version + 1 WHERE replica_id = $1", replica_id
            )

    async def roster(self, replica_id: str) -> list[tuple[str, str]]:
        async with self._db.read() as db:
            rows = await db.fetch(
                "SELECT miner_id, summary FROM replica_miners WHERE replica_id = $1 ORDER BY miner_id", replica_id
            )
        return [(row["miner_id"], row["summary"]) for row in rows]

    async def replicas(self) -> list[ReplicaRecord]:
        async with self._db.read() as db:
            rows = await db.fetch(
                "SELECT replica_id, address, started_at, lease_until, miners, roster_version,"
                f" lease_until >= {_NOW} AS live FROM replicas ORDER BY replica_id"
            )
        return [
            ReplicaRecord(
                replica_id=row["replica_id"],
                address=row["address"],
                started_at=_moment(row["started_at"]),
                lease_until=_moment(row["lease_until"]),
                miners=row["miners"],
                live=row["live"],
                roster_version=row["roster_version"],
            )
            for row in rows
        ]

    async def orphaned_jobs(self) -> list[tuple[str, int, str]]:
        async with self._db.read() as db:
            rows = await db.fetch(_ORPHANS)
        return [(row["job_id"], row["attempt"], row["replica_id"]) for row in rows]

    async def forget_replicas(self, lapsed_for: float) -> int:
        async with self._db.write() as db:
            lapsed = round(lapsed_for * 1_000_000)
            await db.execute(
                "DELETE FROM replica_miners AS m USING replicas AS r"
                f" WHERE m.replica_id = r.replica_id AND r.lease_until < {_NOW} - $1",
                lapsed,
            )
            status = await db.execute(f"DELETE FROM replicas WHERE lease_until < {_NOW} - $1", lapsed)
        return int(status.split()[-1])

    async def job_heads(self) -> dict[str, JobHead]:
        async with self._db.read() as db:
            rows = await db.fetch(_HEADS)
        return {row["job_id"]: JobHead(JobState(row["state"]), row["attempt"], row["last_seq"] or 0) for row in rows}

    async def request_cancel(self, job_id: str, attempt: int) -> None:
        async with self._db.read() as db:
            await db.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, f"{job_id} {attempt}")

    async def listen(
        self,
        on_job: Callable[[str, int, str, str], None],
        on_cancel: Callable[[str, int], None],
        on_lost: Callable[[], None],
    ) -> Listener:
        try:
            connection = await asyncpg.connect(self._db.dsn, timeout=10)
        except STORE_FAILURES as error:
            raise StoreUnavailableError(f"cannot listen for other coordinators' changes: {error}") from error
        listener = Listener(connection, on_lost)

        def job_changed(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            job_id, seq, kind, writer = payload.split(" ", 3)
            on_job(job_id, int(seq), kind, writer)

        def cancel_asked(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            job_id, _, attempt = payload.partition(" ")
            with contextlib.suppress(ValueError):
                on_cancel(job_id, int(attempt))

        try:
            await connection.add_listener(JOB_CHANNEL, job_changed)
            await connection.add_listener(CANCEL_CHANNEL, cancel_asked)
        except STORE_FAILURES as error:
            connection.terminate()
            raise StoreUnavailableError(f"cannot listen for other coordinators' changes: {error}") from error
        connection.add_termination_listener(listener.terminated)
        return listener


class Listener:
    """The connection notifications arrive on; it tells `on_lost` once if it breaks before `close`."""

    def __init__(self, connection: Any, on_lost: Callable[[], None]) -> None:
        self._connection = connection
        self._on_lost = on_lost
        self._closing = False

    def terminated(self, _connection: Any) -> None:
        if not self._closing:
            self._on_lost()

    async def close(self) -> None:
        self._closing = True
        try:
            await self._connection.close(timeout=2)
        except STORE_FAILURES:
            self._connection.terminate()


def _moment(value: int) -> datetime:
    result = moment(value)
    assert result is not None
    return result
