"""Persistence: the `Store` interface and its embedded SQLite implementation."""

from aitbc.store.base import JobChanges, JobPage, Store
from aitbc.store.sqlite import SqliteStore

__all__ = ["JobChanges", "JobPage", "SqliteStore", "Store"]
