"""Persistence: the `Store` interface, its embedded SQLite implementation, and PostgreSQL's.

`aitbc.store.postgres` is imported only when a `postgresql://` store is opened (`aitbc.store.urls`)."""

from aitbc.store.base import JobChanges, JobPage, Store
from aitbc.store.sqlite import SqliteStore

__all__ = ["JobChanges", "JobPage", "SqliteStore", "Store"]
