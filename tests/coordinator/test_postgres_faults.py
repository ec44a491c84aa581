"""The PostgreSQL server going away mid-run and coming back: StoreUnavailableError, then recovery.

A cluster of its own (stopping the session's would fail every other test), stopped with
`pg_ctl stop -m immediate` (as a crash) while a job runs, then started again on the same port.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import Cancel
from aitbc.coordinator.store_health import StoreUnavailable
from aitbc.domain.states import JobState
from aitbc.store.base import StoreUnavailableError
from aitbc.store.urls import open_store
from tests.coordinator.test_parts import CLIENT, CONFIG, assigned, attached, next_command, spec
from tests.coordinator.test_store_faults import recover
from tests.support.postgres import PostgresCluster, unavailable_reason

_names = itertools.count(1)
CONFIG_NOW = datetime(2026, 1, 24, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster.create()
    try:
        cluster.start(durable=True)
        yield cluster
    finally:
        cluster.destroy()


async def fresh_database(cluster: PostgresCluster) -> str:
    """A new database on the module's cluster (each test's own; the store migrates it when opened)."""
    name = f"faults_{next(_names)}"
    admin = await asyncpg.connect(cluster.url())
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return cluster.url(name)


async def test_a_stopped_server_is_store_unavailable_and_the_store_recovers_after_a_restart(
    cluster: PostgresCluster,
) -> None:
    store = await open_store(await fresh_database(cluster))
    try:
        await store.credit("acct", 5, tx_id="mint:1", now=CONFIG_NOW)
        await asyncio.to_thread(cluster.stop, "immediate")
        for call in (store.probe(), store.account("acct"), store.credit("acct", 1, tx_id="mint:2", now=CONFIG_NOW)):
            with pytest.raises(StoreUnavailableError):
                await call
        await asyncio.to_thread(cluster.start, durable=True)
        # The pool replaces its dead connections: no reopen needed.
        await store.probe()
        assert (await store.account("acct")).available == 5
    finally:
        await store.close()


async def test_the_coordinator_reports_the_store_unavailable_and_resumes_its_job_after_a_restart(
    cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    clock = ManualClock()
    store = await open_store(await fresh_database(cluster))
    coordinator = Coordinator(store, CONFIG, clock=clock)
    await coordinator.start()
    try:
        session = await attached(coordinator)
        job = await coordinator.submit(CLIENT, spec())
        await assigned(coordinator, session)
        await coordinator.reports.tokens(session, job.job_id, 1, "kept", 1)

        await asyncio.to_thread(cluster.stop, "immediate")
        await coordinator.reports.tokens(session, job.job_id, 1, " lost", 1)
        # The attempt is stopped, and the store-health part refuses new work: UNAVAILABLE to clients.
        assert isinstance(await next_command(session), Cancel)
        assert not coordinator._health.healthy()
        with pytest.raises(StoreUnavailable):
            await coordinator.submit(CLIENT, spec("while down"))

        await asyncio.to_thread(cluster.start, durable=True)
        await recover(clock, coordinator, session)
        assign = await assigned(coordinator, session)
        assert (assign.job_id, assign.attempt, assign.resume_text) == (job.job_id, 2, "kept")
        resumed = await coordinator.get(CLIENT, job.job_id)
        assert (resumed.state, resumed.excused_attempts) == (JobState.ASSIGNED, 1)
        messages = [record.getMessage() for record in caplog.records]
        assert sum("the store is failing" in m for m in messages) == 1
        assert sum("the store recovered" in m for m in messages) == 1
    finally:
        await coordinator.shutdown(0)
        await store.close()
