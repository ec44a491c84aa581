"""Opening a store from what a user types: a file path or a URL."""

from __future__ import annotations

from pathlib import Path

from aitbc.store.base import Store
from aitbc.store.sqlite import SqliteStore

SQLITE_SCHEME = "sqlite:///"


class StoreUrlError(ValueError):
    """The store named cannot be opened by this coordinator."""


async def open_store(target: str | Path) -> Store:
    """Open `target`: a SQLite file path, or `sqlite:///relative.db` / `sqlite:////absolute.db` (SQLAlchemy's form)."""
    text = str(target)
    if text.startswith(SQLITE_SCHEME):
        text = text[len(SQLITE_SCHEME) :]
        if not text:
            raise StoreUrlError(f"{target!s}: the URL names no database file")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreUrlError(f"{scheme}:// stores are not supported; use a SQLite file path or {SQLITE_SCHEME}PATH")
    return await SqliteStore.open(text)
