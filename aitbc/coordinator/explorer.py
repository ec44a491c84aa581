"""The explorer: blocks, transactions, receipts and network totals, newest first. Public: addresses,
hashes, amounts and counts only, never a prompt, an output or an account id.

Lists are paged by an opaque token that is the position to continue below (a height or a store seq), so a
page stays stable while new blocks land on top. Stats are computed from the store at most once a second:
they are public, and a scrape storm must not turn into a storm of table scans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from aitbc.coordinator.clock import Clock
from aitbc.domain.blocks import Block
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.ledger import Transaction
from aitbc.domain.receipts import Receipt
from aitbc.store.base import JobTotals, JobWindow, LedgerStats, Store

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
STATS_MAX_AGE = 1.0
WINDOWS = (timedelta(minutes=1), timedelta(hours=1))


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str  # empty on the last page


@dataclass(frozen=True, slots=True)
class NetworkStats:
    ledger: LedgerStats
    jobs: JobTotals
    miners_online: int
    models_served: tuple[str, ...]

    @property
    def last_minute(self) -> JobWindow:
        return self.jobs.windows[0]

    @property
    def last_hour(self) -> JobWindow:
        return self.jobs.windows[1]


def _limit(limit: int) -> int:
    if limit == 0:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_argument("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _cursor(page_token: str) -> int | None:
    """The position a page token continues below; None for the first page."""
    if not page_token:
        return None
    if not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 18):
        raise invalid_argument("page_token", "is not a token from a previous page")
    return int(page_token)


def _page(items: Sequence[T], limit: int, position: Callable[[T], int]) -> Page[T]:
    """`items` fetched one past `limit`: a next page exists iff the extra one came back."""
    shown = list(items[:limit])
    return Page(shown, str(position(shown[-1])) if len(items) > limit else "")


class Explorer:
    def __init__(self, store: Store, clock: Clock, network: Callable[[], tuple[int, Sequence[str]]]) -> None:
        """`network` tells the miners online now and the models they serve."""
        self._store = store
        self._clock = clock
        self._network = network
        self._stats: tuple[float, NetworkStats] | None = None

    async def stats(self) -> NetworkStats:
        now = self._clock.monotonic()
        if self._stats is not None and now - self._stats[0] < STATS_MAX_AGE:
            return self._stats[1]
        wall = self._clock.now()
        ledger = await self._store.ledger_stats()
        jobs = await self._store.job_totals(since=[wall - window for window in WINDOWS])
        online, models = self._network()
        stats = NetworkStats(ledger, jobs, online, tuple(sorted(models)))
        self._stats = (now, stats)
        return stats

    async def blocks(self, limit: int, page_token: str = "") -> Page[Block]:
        limit = _limit(limit)
        below = _cursor(page_token)
        top = (await self._store.ledger_stats()).height if below is None else below - 1
        if top < 0:
            return Page([], "")
        start = max(0, top - limit)  # one block more than asked, to know whether another page exists
        blocks = (await self._store.blocks(from_height=start, limit=top - start + 1))[::-1]
        return _page(blocks, limit, lambda block: block.height)

    async def block(self, height: int) -> Block:
        found = await self._store.blocks(from_height=height, limit=1) if height >= 0 else []
        if not found or found[0].height != height:
            raise AitbcError(Reason.BLOCK_NOT_FOUND, f"no block at height {height}", field="height")
        return found[0]

    async def transactions(self, limit: int, page_token: str = "") -> Page[Transaction]:
        limit = _limit(limit)
        entries = await self._store.ledger_before(before_seq=_cursor(page_token), limit=limit + 1)
        page = _page(entries, limit, lambda entry: entry.seq)
        return Page([entry.transaction for entry in page.items], page.next_page_token)

    async def receipts(self, limit: int, page_token: str = "") -> Page[Receipt]:
        limit = _limit(limit)
        rows = await self._store.receipts_before(before_seq=_cursor(page_token), limit=limit + 1)
        page = _page(rows, limit, lambda row: row[0])
        return Page([receipt for _, receipt in page.items], page.next_page_token)
