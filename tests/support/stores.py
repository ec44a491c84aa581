"""Raw SQL against either store, for tests that look under the contract (rows the methods do not show).

The SQL is written with `?` placeholders and in the dialect both stores share."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from aitbc.store.base import Store
from aitbc.store.postgres import PostgresStore
from aitbc.store.postgres_pool import pg
from aitbc.store.sqlite import SqliteStore


async def raw_rows(store: Store, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if isinstance(store, SqliteStore):

        def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in db.execute(sql, args).fetchall()]

        return await store._thread.read(read)
    assert isinstance(store, PostgresStore)
    async with store._db.read() as db:
        return [tuple(row) for row in await db.fetch(pg(sql), *args)]


async def raw_write(store: Store, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
    """Run the statements in one transaction."""
    batch = list(statements)
    if isinstance(store, SqliteStore):

        def write(db: sqlite3.Connection) -> None:
            for sql, args in batch:
                db.execute(sql, args)

        await store._thread.write(write)
        return
    assert isinstance(store, PostgresStore)
    async with store._db.write() as db:
        for sql, args in batch:
            await db.execute(pg(sql), *args)
