"""`aitbc coordinator --store URL`: PostgreSQL when asked, the SQLite file in the data directory otherwise."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from aitbc.domain.keys import Role, hash_key
from aitbc.store.postgres_migrations import POSTGRES_SCHEMA_VERSION
from aitbc.store.urls import open_store
from tests.cli.conftest import free_port, spawn_aitbc
from tests.support.postgres import PostgresCluster


async def test_the_coordinator_runs_on_the_postgresql_store_it_is_given(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    url = await postgres_cluster.new_database()
    home = tmp_path / "home"
    args = ("coordinator", "--listen", f"127.0.0.1:{free_port()}", "--home", str(home), "--store", url)
    async with spawn_aitbc(*args, env={}) as spawned:
        said = await spawned.read_until("coordinator serving on", stream="stderr")
        assert url.rsplit("/", 1)[-1] in said
        db = await asyncpg.connect(url)
        try:
            assert await db.fetchval("SELECT max(version) FROM schema_migrations") == POSTGRES_SCHEMA_VERSION
        finally:
            await db.close()
        spawned.interrupt()
        code, _, _ = await spawned.finish()
    assert code == 0
    assert not (home / "aitbc.db").exists()  # no SQLite file: the store is PostgreSQL


async def test_an_unknown_store_scheme_is_refused(tmp_path: Path) -> None:
    args = ("coordinator", "--home", str(tmp_path / "home"), "--store", "mysql://db/aitbc")
    async with spawn_aitbc(*args, env={}) as spawned:
        code, _, err = await spawned.finish()
    assert code == 2
    assert "--store: mysql:// stores are not supported" in err


async def test_keys_are_created_in_the_postgresql_store(tmp_path: Path, postgres_cluster: PostgresCluster) -> None:
    url = await postgres_cluster.new_database()
    async with spawn_aitbc("keys", "create", "--role", "admin", "--store", url, env={}) as spawned:
        code, out, _ = await spawned.finish()
    assert code == 0
    store = await open_store(url)
    try:
        principal = await store.principal_for(hash_key(out.strip()))
    finally:
        await store.close()
    assert principal is not None
    assert principal.role is Role.ADMIN
