"""The explorer: blocks, transactions, receipts and totals, newest first. Addresses, hashes and amounts only."""

from __future__ import annotations

from aitbc.domain.blocks import Block
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.ledger import Transaction
from aitbc.domain.receipts import Receipt
from aitbc.store.base import LedgerStats, Store

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _limit(limit: int) -> int:
    if limit == 0:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_argument("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


class Explorer:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def stats(self) -> LedgerStats:
        return await self._store.ledger_stats()

    async def blocks(self, limit: int) -> list[Block]:
        limit = _limit(limit)
        height = (await self._store.ledger_stats()).height
        if height < 0:
            return []
        blocks = await self._store.blocks(from_height=max(0, height - limit + 1), limit=limit)
        return blocks[::-1]

    async def block(self, height: int) -> Block:
        found = await self._store.blocks(from_height=height, limit=1) if height >= 0 else []
        if not found or found[0].height != height:
            raise AitbcError(Reason.BLOCK_NOT_FOUND, f"no block at height {height}", field="height")
        return found[0]

    async def transactions(self, limit: int) -> list[Transaction]:
        limit = _limit(limit)
        count = (await self._store.ledger_stats()).transactions
        entries = await self._store.ledger(after_seq=max(0, count - limit), limit=limit)
        return [entry.transaction for entry in reversed(entries)]

    async def receipts(self, limit: int) -> list[Receipt]:
        return await self._store.receipts(client=None, limit=_limit(limit))
