"""The block sealer: every few seconds, the ledger rows and receipts committed since the last block.

Blocks are sealed on the injected clock's timer (`CoordinatorConfig.block_interval`), or at once when
`block_max_transactions` ledger entries were written since the last seal, whichever comes first; at most
`block_max_transactions` transactions each, so a backlog becomes several blocks in one go. Settlement
counts the entries: a credit once committed, a hold or a settlement as it is built, before the transition
that writes it; one not yet committed when the early seal runs is sealed by the next one. The genesis
block (empty) is sealed at start, and what is left at shutdown is sealed before the store closes. A
failing store skips a tick: nothing is lost, the next tick seals it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aitbc.coordinator.clock import Clock, Timer
from aitbc.domain.blocks import Block, BlockHeader, seal_block
from aitbc.domain.canonical import format_time
from aitbc.domain.ledger import Transaction
from aitbc.domain.receipts import Receipt
from aitbc.store.base import Store, StoreUnavailableError

log = logging.getLogger(__name__)


class BlockSealer:
    def __init__(self, store: Store, clock: Clock, *, seed: bytes, interval: float, max_transactions: int) -> None:
        self._store = store
        self._clock = clock
        self._seed = seed
        self._interval = interval
        self._max_transactions = max_transactions
        self._timer: Timer | None = None
        self._ticking: asyncio.Task[None] | None = None
        self._closed = False
        self._unsealed = 0  # entries written since the last seal began

    async def start(self) -> None:
        await self.seal_pending()
        self._arm()

    async def close(self) -> None:
        """Stop the timer and seal what is left (a failing store leaves it for the next start); once."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._ticking is not None:
            await self._ticking
        with contextlib.suppress(StoreUnavailableError):
            await self.seal_pending()

    def entry_written(self) -> None:
        """One more ledger entry; enough of them seal a block now instead of at the next tick."""
        self._unsealed += 1
        if self._unsealed >= self._max_transactions and self._ticking is None and not self._closed:
            if self._timer is not None:
                self._timer.cancel()
            self._fire()

    async def seal_pending(self) -> list[Block]:
        """Seal blocks until nothing new is left; the blocks sealed."""
        sealed: list[Block] = []
        self._unsealed = 0
        while True:
            now = self._clock.now()
            block = await self._store.seal_block(self._build, max_transactions=self._max_transactions, now=now)
            if block is None:
                return sealed
            sealed.append(block)

    def _build(self, previous: BlockHeader | None, transactions: list[Transaction], receipts: list[Receipt]) -> Block:
        # Block time never runs backwards, even if the wall clock does.
        time = format_time(self._clock.now())
        if previous is not None and time < previous.time:
            time = previous.time
        return seal_block(
            previous=previous, time=time, transactions=transactions, receipts=receipts, coordinator_seed=self._seed
        )

    def _arm(self) -> None:
        if not self._closed:
            self._timer = self._clock.call_later(self._interval, self._fire)

    def _fire(self) -> None:
        self._ticking = asyncio.create_task(self._tick(), name="seal-blocks")

    async def _tick(self) -> None:
        try:
            await self.seal_pending()
        except StoreUnavailableError as error:
            log.warning("sealing blocks skipped: %s", error)
        except Exception:
            log.exception("sealing blocks failed")
        finally:
            self._ticking = None
            self._arm()
