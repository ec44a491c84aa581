"""Opening a store from what a user types: a file path or a URL."""

from __future__ import annotations

import re
from pathlib import Path

from aitbc.store.base import Store
from aitbc.store.sqlite import SqliteStore

SQLITE_SCHEME = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """The store named cannot be opened by this coordinator."""


def redact(target: str) -> str:
    """A store URL without its password, for logs and messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", target)


def is_postgres_url(target: str | Path) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


async def open_store(target: str | Path) -> Store:
    """Open `target`: a SQLite file path, `sqlite:///relative.db` / `sqlite:////absolute.db` (SQLAlchemy's form),
    or a PostgreSQL URL (`postgresql://user@host:port/db`, or `postgres://`), migrating it first."""
    text = str(target)
    if is_postgres_url(text):
        # Here, not at the top: a SQLite coordinator never imports asyncpg.
        from aitbc.store.postgres import PostgresStore

        return await PostgresStore.open(text)
    if text.startswith(SQLITE_SCHEME):
        text = text[len(SQLITE_SCHEME) :]
        if not text:
            raise StoreUrlError(f"{target!s}: the URL names no database file")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreUrlError(
            f"{scheme}:// stores are not supported; use a SQLite file path, {SQLITE_SCHEME}PATH or postgresql://..."
        )
    return await SqliteStore.open(text)
