"""The replica tables on PostgreSQL: leases, and each replica's roster of connected miners (docs/scaling.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from aitbc.coordinator.miners import MinerSession
from aitbc.coordinator.replica_roster import MinerRoster
from aitbc.store.postgres import PostgresStore
from tests.coordinator.test_parts import MINER, info
from tests.support.postgres import PostgresCluster


@pytest.fixture
async def stores(postgres_cluster: PostgresCluster) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    url = await postgres_cluster.new_database()
    a = await PostgresStore.open(url, replica_id="a")
    b = await PostgresStore.open(url, replica_id="b")
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def versions(store: PostgresStore) -> dict[str, int]:
    return {record.replica_id: record.roster_version for record in await store.replicas()}


async def test_a_roster_names_each_miner_once_and_follows_a_miner_that_moves(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    assert await a.renew_replica("a", address="", lease_seconds=60, miners="[]") is False  # made anew
    assert await a.renew_replica("a", address="", lease_seconds=60, miners="[]") is True
    await b.renew_replica("b", address="", lease_seconds=60, miners="[]")
    await a.publish_miners("a", {"m1": '{"n": 1}', "m2": '{"n": 2}'}, [])
    assert await b.roster("a") == [("m1", '{"n": 1}'), ("m2", '{"n": 2}')]
    assert (await versions(b))["a"] == 1
    # m1 moves to b before a has noticed it left: b's row wins, and a's late removal leaves it alone.
    await b.publish_miners("b", {"m1": '{"n": 3}'}, [])
    await a.publish_miners("a", {}, ["m1"])
    assert await a.roster("a") == [("m2", '{"n": 2}')]
    assert await a.roster("b") == [("m1", '{"n": 3}')]
    assert await versions(a) == {"a": 2, "b": 1}
    await a.leave_replica("a")  # a clean stop takes the roster with the lease
    assert await b.roster("a") == []
    assert await b.roster("b") == [("m1", '{"n": 3}')]


async def test_forgetting_a_lapsed_replica_drops_its_roster(stores: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = stores
    await a.renew_replica("a", address="", lease_seconds=0.01, miners="[]")
    await b.renew_replica("b", address="", lease_seconds=60, miners="[]")
    await a.publish_miners("a", {"m1": "{}"}, [])
    await b.publish_miners("b", {"m2": "{}"}, [])
    await asyncio.sleep(0.05)
    assert await b.forget_replicas(0.01) == 1
    assert await b.roster("a") == []
    assert await b.roster("b") == [("m2", "{}")]


class CountingStore:
    """A PostgresStore that counts roster reads and writes."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.writes: list[tuple[dict[str, str], list[str]]] = []
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def publish_miners(self, replica_id: str, changed: dict[str, str], gone: list[str]) -> None:
        self.writes.append((dict(changed), list(gone)))
        await self.store.publish_miners(replica_id, changed, gone)

    async def roster(self, replica_id: str) -> list[tuple[str, str]]:
        self.reads += 1
        return await self.store.roster(replica_id)


async def test_a_roster_is_written_when_it_changes_and_read_when_its_version_moves(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = stores
    writer, reader = CountingStore(a), CountingStore(b)
    mine = MinerRoster(writer, "a", full_rewrite_every=1000)  # type: ignore[arg-type]
    theirs = MinerRoster(reader, "b")  # type: ignore[arg-type]
    await a.renew_replica("a", address="", lease_seconds=60, miners="[]")
    session = MinerSession(info("m1", slots=2), MINER, datetime.now(UTC), models={"tiny": "tiny"}, seen_at=0.0)
    await mine.publish([session], anew=True)
    await mine.publish([session], anew=False)  # nothing changed: nothing written
    assert [list(changed) for changed, _ in writer.writes] == [["m1"]]
    await theirs.refresh(await b.replicas())
    await theirs.refresh(await b.replicas())  # same version: not read again
    assert reader.reads == 1
    [remote] = theirs.remote()
    assert (remote.miner_id, remote.replica_id, remote.max_concurrency, remote.draining) == ("m1", "a", 2, False)
    session.set_draining(True)
    await mine.publish([session], anew=False)
    await theirs.refresh(await b.replicas())
    assert theirs.remote()[0].draining is True
    await mine.publish([], anew=False)
    assert writer.writes[-1] == ({}, ["m1"])
    await theirs.refresh(await b.replicas())
    assert theirs.remote() == []
    assert reader.reads == 3
