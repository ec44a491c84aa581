"""What is particular to PostgreSQL: versioned migrations under an advisory lock, and what several
coordinators on one database need from the store (groundwork for replicas, issue 14)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from aitbc.domain.chain import verify_chain
from aitbc.domain.signing import public_key_of
from aitbc.store.base import StoreUnavailableError
from aitbc.store.postgres import PostgresStore
from aitbc.store.postgres_migrations import POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION
from aitbc.store.urls import open_store
from tests.store.test_sqlite_store import NOW, _event
from tests.store.test_store_contract import BUILD, SEED, job
from tests.support.postgres import PostgresCluster


@pytest.fixture
async def empty_database(postgres_cluster: PostgresCluster) -> str:
    """A database with nothing in it, not even the schema (the template is migrated; `postgres` is not)."""
    name = f"empty_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(postgres_cluster.url())
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    finally:
        await admin.close()
    return postgres_cluster.url(name)


async def versions(url: str) -> list[int]:
    db = await asyncpg.connect(url)
    try:
        return [row[0] for row in await db.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await db.close()


async def test_a_fresh_database_is_migrated_and_reopening_is_a_no_op(empty_database: str) -> None:
    store = await open_store(empty_database)
    assert isinstance(store, PostgresStore)
    assert await store.schema_version() == POSTGRES_SCHEMA_VERSION == len(POSTGRES_MIGRATIONS)
    await store.close()
    assert await versions(empty_database) == list(range(1, POSTGRES_SCHEMA_VERSION + 1))
    store = await open_store(empty_database.replace("postgresql://", "postgres://"))
    await store.close()
    assert await versions(empty_database) == list(range(1, POSTGRES_SCHEMA_VERSION + 1))


async def test_an_older_database_is_upgraded_in_place(empty_database: str) -> None:
    db = await asyncpg.connect(empty_database)
    try:
        await db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)")
        for number, script in enumerate(POSTGRES_MIGRATIONS[:4], start=1):
            await db.execute(script)
            await db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", number)
        await db.execute(
            "INSERT INTO jobs (job_id, owner_id, state, prompt, model, max_tokens, temperature, top_p,"
            " stream, created_at, updated_at) VALUES ('job_old', 'o', 'completed', 'p', 'm', 8, 0.7, 0.9,"
            " 0, 0, 0)"
        )
    finally:
        await db.close()
    store = await open_store(empty_database)
    try:
        old = await store.get_job("job_old")
        assert old is not None
        assert (old.receipt_id, old.result_deleted_at) == ("", None)
    finally:
        await store.close()


async def test_coordinators_starting_together_migrate_once(empty_database: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(empty_database) for _ in range(4)))
    for store in stores:
        await store.close()
    assert await versions(empty_database) == list(range(1, POSTGRES_SCHEMA_VERSION + 1))


async def test_a_newer_schema_is_refused(empty_database: str) -> None:
    await (await open_store(empty_database)).close()
    db = await asyncpg.connect(empty_database)
    try:
        await db.execute("INSERT INTO schema_migrations (version) VALUES ($1)", POSTGRES_SCHEMA_VERSION + 1)
    finally:
        await db.close()
    with pytest.raises(RuntimeError, match="newer"):
        await open_store(empty_database)


async def test_two_stores_on_one_database_seal_one_chain(postgres_cluster: PostgresCluster) -> None:
    url = await postgres_cluster.new_database()
    first, second = await PostgresStore.open(url), await PostgresStore.open(url)
    try:
        # Credits committing from both while both seal: every transaction lands in exactly one block, in order.
        async def credit(store: PostgresStore, n: int) -> None:
            await store.credit(f"acct{n % 3}", 1, tx_id=f"mint:{n}", now=NOW)

        async def seal(store: PostgresStore) -> None:
            for _ in range(15):
                await store.seal_block(BUILD, max_transactions=4, now=NOW)
                await asyncio.sleep(0)

        await asyncio.gather(
            *(credit(first if n % 2 else second, n) for n in range(40)), seal(first), seal(second), seal(first)
        )
        while await first.seal_block(BUILD, max_transactions=100, now=NOW) is not None:
            pass
        blocks = await second.blocks(limit=1000)
        assert verify_chain(blocks, coordinator_key=public_key_of(SEED)).ok
        sealed = [tx.tx_id for block in blocks for tx in block.transactions]
        assert sorted(sealed) == sorted(f"mint:{n}" for n in range(40))
        assert sealed == [entry.transaction.tx_id for entry in await first.ledger(limit=100)]
    finally:
        await first.close()
        await second.close()


async def test_an_idempotency_key_holds_across_stores(postgres_cluster: PostgresCluster) -> None:
    url = await postgres_cluster.new_database()
    first, second = await PostgresStore.open(url), await PostgresStore.open(url)
    try:
        stored = await asyncio.gather(
            *(
                (first if n % 2 else second).create_job(job(f"job_{n}", key="same"), _event(f"job_{n}", 1))
                for n in range(8)
            )
        )
        assert len({found.job_id for found in stored}) == 1
        assert len((await first.list_jobs(owner_id="owner", state=None, limit=10, page_token="")).jobs) == 1
    finally:
        await first.close()
        await second.close()


async def test_a_dropped_connection_is_the_store_failing_and_a_wrong_argument_is_not(
    postgres_cluster: PostgresCluster,
) -> None:
    store = await PostgresStore.open(await postgres_cluster.new_database())
    try:

        async def dropped() -> None:
            async with store._db.read() as db:
                with contextlib.suppress(asyncpg.PostgresConnectionError):  # the statement that ended it
                    await db.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                await db.fetch("SELECT 1")  # on a connection the server dropped

        with pytest.raises(StoreUnavailableError):
            await dropped()
        with pytest.raises(asyncpg.DataError):
            await store.get_job(123)  # type: ignore[arg-type]
        await store.probe()  # the pool replaced the dropped connection
    finally:
        await store.close()
