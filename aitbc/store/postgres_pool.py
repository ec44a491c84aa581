"""The connections of `PostgresStore`: an asyncpg pool, one transaction per store call, and error mapping.

`write()` hands out a connection inside a READ COMMITTED transaction that commits when the block ends;
`read()` one outside any (a single statement sees one snapshot), and `snapshot()` one inside a read-only
REPEATABLE READ transaction, for reads of several statements that must agree. Losing the server (refused or
dropped connections, an administrator's shutdown, a full disk, an I/O error) raises `StoreUnavailableError`;
a statement's own error (a constraint, say) is raised as asyncpg raised it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from aitbc.store.base import StoreUnavailableError
from aitbc.store.urls import redact

# What "the store cannot be read or written" is, as asyncpg reports it: class 08 (connection exceptions),
# 53 (insufficient resources: disk full, out of memory), 57 (operator intervention: shutdown, cannot connect
# now), 58 (system error: I/O), 25006 (a read-only transaction: a standby), and the OS's refusal or a timeout
# while connecting, and asyncpg's plain InterfaceError: a connection the server dropped (or that the pool
# released when it did) raises it at the next statement. Its subclasses are not the store failing but the
# call being wrong (DataError: an argument of the wrong type; configuration and feature errors): raised as is.
STORE_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.PostgresSystemError,
    asyncpg.ReadOnlySQLTransactionError,
)

_CALL_ERRORS = (
    asyncpg.DataError,
    asyncpg.ClientConfigurationError,
    asyncpg.UnsupportedClientFeatureError,
    asyncpg.UnsupportedServerFeatureError,
)

_PLACEHOLDER = re.compile(r"\?")


@functools.cache
def pg(sql: str) -> str:
    """SQL written with `?` placeholders (as the SQLite modules write it) with PostgreSQL's `$1`, `$2`, … instead.

    Every `?` is a placeholder: the SQL given here uses no `?` operator (jsonb containment is `@>`)."""
    counter = iter(range(1, 1_000_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class Connections:
    """A pool of connections to one database, handed out one per store call."""

    def __init__(self, pool: Any, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 0, max_size: int = 10, name: str = "") -> Connections:
        """`name`: the connections' application_name, which notifications of their writes carry."""
        settings = {"application_name": name} if name else None
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, timeout=10, server_settings=settings
            )
        except STORE_FAILURES as error:
            raise StoreUnavailableError(f"cannot connect to {redact(dsn)}: {error}") from error
        return cls(pool, dsn)

    async def close(self) -> None:
        try:
            await self._pool.close()
        except STORE_FAILURES:
            self._pool.terminate()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        async with self._connection() as connection, connection.transaction():
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        async with self._connection() as connection:
            yield connection

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Any]:
        async with (
            self._connection() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield connection

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            async with self._pool.acquire() as connection:
                yield connection
        except STORE_FAILURES as error:
            raise StoreUnavailableError(f"the PostgreSQL store failed: {error}") from error
        except asyncpg.InterfaceError as error:
            if isinstance(error, _CALL_ERRORS):
                raise
            raise StoreUnavailableError(f"the PostgreSQL store failed: {error}") from error
