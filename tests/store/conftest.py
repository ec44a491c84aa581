from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aitbc.store.base import Store
from aitbc.store.urls import open_store


@pytest.fixture
async def store(store_target: Path | str) -> AsyncIterator[Store]:
    """A fresh store, once per backend (`store_target` is parametrised over SQLite and PostgreSQL)."""
    opened = await open_store(store_target)
    try:
        yield opened
    finally:
        await opened.close()
