from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc.aio
import pytest

from aitbc.coordinator.auth import create_api_key
from aitbc.coordinator.clock import Clock
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.domain.catalog import DEFAULT_CATALOG, ModelEntry
from aitbc.domain.keys import Role
from aitbc.domain.money import MICRO_PER_CREDIT
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.store.base import Store
from aitbc.store.urls import open_store
from aitbc.v1 import jobs_pb2_grpc
from tests.support.postgres import PostgresCluster, unavailable_reason

# The stores a test parametrised over them runs on (`store_target`).
STORE_BACKENDS = ("sqlite", "postgres")


@dataclass
class Keys:
    client: str
    other_client: str
    miner: str
    admin: str


@pytest.fixture
def database(tmp_path: Path) -> Path | str:
    """What the coordinator fixture opens: a SQLite file. A module runs its tests on both stores by
    overriding it with `store_target` (see tests/coordinator/test_job_path.py)."""
    return tmp_path / "aitbc.db"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole run (skipped, with the reason, when none can start)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster.create()
    try:
        cluster.start()
        # On a thread of its own: this fixture may be set up from inside a test's running event loop.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, cluster.prepare_template()).result()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(params=STORE_BACKENDS)
async def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh store of each kind: a SQLite file path, or the URL of a new, migrated PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "aitbc.db"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return await cluster.new_database()


@pytest.fixture
async def store(store_target: Path | str) -> AsyncIterator[Store]:
    """A fresh store of each kind (`store_target`), closed after the test."""
    opened = await open_store(store_target)
    try:
        yield opened
    finally:
        await opened.close()


# Small CPU models the scripted miners advertise, on top of the default catalog; they are free (price 0),
# so jobs of theirs need no credits. The default models keep their prices: the `keys` fixture credits both
# client accounts with `STARTING_CREDITS`, far more than any test's jobs hold.
TEST_CATALOG = DEFAULT_CATALOG.merged(ModelEntry(id=name) for name in ("tiny", "m", "x", "other-model", "bench"))
STARTING_CREDITS = 1_000 * MICRO_PER_CREDIT


@pytest.fixture
def coordinator_config() -> CoordinatorConfig:
    return CoordinatorConfig(cancel_ack_timeout=5.0, catalog=TEST_CATALOG)


@pytest.fixture
def clock() -> Clock | None:
    """The coordinator's clock; None is real time. Tests of leases and TTLs override it with a ManualClock."""
    return None


@pytest.fixture
async def coordinator(
    database: Path | str, coordinator_config: CoordinatorConfig, clock: Clock | None
) -> AsyncIterator[RunningCoordinator]:
    running = await start_coordinator(database, "127.0.0.1:0", coordinator_config, clock=clock)
    try:
        yield running
    finally:
        await running.stop(grace=0.5)


@pytest.fixture
def target(coordinator: RunningCoordinator) -> str:
    return f"127.0.0.1:{coordinator.port}"


@pytest.fixture
async def keys(coordinator: RunningCoordinator) -> Keys:
    return await mint_keys(coordinator.store)


async def mint_keys(store: Store) -> Keys:
    """A key of each role straight into `store`, the clients credited."""
    now = datetime.now(UTC)

    async def mint(role: Role) -> str:
        raw, principal = await create_api_key(store, role, now)
        if role is Role.CLIENT:
            await store.credit(principal.owner_id, STARTING_CREDITS, tx_id=f"mint:test:{raw}", now=now)
        return raw

    return Keys(
        client=await mint(Role.CLIENT),
        other_client=await mint(Role.CLIENT),
        miner=await mint(Role.MINER),
        admin=await mint(Role.ADMIN),
    )


@pytest.fixture
async def jobs_stub(target: str) -> AsyncIterator[jobs_pb2_grpc.JobServiceAsyncStub]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield jobs_pb2_grpc.JobServiceStub(channel)
