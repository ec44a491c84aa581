"""The reputation book writes miner records behind, in batches, on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.miners import MinerSession
from aitbc.coordinator.reputation_book import WRITE_BATCH, ReputationBook
from aitbc.store.base import MinerRecord, StoreUnavailableError
from aitbc.store.sqlite import SqliteStore
from tests.coordinator.test_parts import MINER, info


class CountingStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.batches: list[int] = []
        self.failing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def save_miners(self, miners: list[MinerRecord]) -> None:
        if self.failing:
            raise StoreUnavailableError("database or disk is full")
        self.batches.append(len(miners))
        await self._store.save_miners(miners)


async def test_many_miners_connecting_are_written_in_a_few_transactions(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "aitbc.db")
    try:
        counting = CountingStore(store)
        book = ReputationBook(counting, ManualClock())  # type: ignore[arg-type]
        count = 2 * WRITE_BATCH + 7
        for n in range(count):
            session = MinerSession(info(f"m{n}"), MINER, datetime.now(UTC), models={"tiny": "tiny"}, seen_at=0.0)
            book.seen(session)
        counting.failing = True
        await book.flush()  # refused: nothing lost, all still to write
        assert counting.batches == []
        counting.failing = False
        await book.flush()
        assert sorted(counting.batches) == [7, WRITE_BATCH, WRITE_BATCH]
        assert len(await store.miners()) == count
    finally:
        await store.close()
