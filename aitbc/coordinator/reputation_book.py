"""Miner reputation kept in memory and written behind to the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.miners import MinerSession
from aitbc.domain.reputation import MinerStats
from aitbc.store.base import MinerRecord, Store, StoreUnavailableError

log = logging.getLogger(__name__)


# Miner records written per store transaction.
WRITE_BATCH = 500


class ReputationBook:
    """Every miner the coordinator has met: its statistics, score and last appearance.

    Updates apply in memory at once (routing reads them on every dispatch)
    and reach the store through one writer task that gathers them for
    `write_delay` seconds, so that recording an outcome never waits on disk
    and a busy miner costs one write a second, not one per job. A crash loses
    at most that much reputation history; shutdown flushes.
    """

    def __init__(self, store: Store, clock: Clock, *, write_delay: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._write_delay = write_delay
        self._records: dict[str, MinerRecord] = {}
        self._dirty: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self._flush_now = asyncio.Event()
        self._watchers: list[Callable[[str], None]] = []

    def watch(self, watcher: Callable[[str], None]) -> None:
        """Call `watcher(miner_id)` whenever a miner's record changes (what routing's cached candidates read)."""
        self._watchers.append(watcher)

    async def load(self) -> None:
        self._records = {record.miner_id: record for record in await self._store.miners()}
        for miner_id in self._records:
            self._notify(miner_id)

    async def refresh(self, miner_id: str) -> None:
        """Take `miner_id`'s statistics from the store when they are newer than these: another replica the miner
        was connected to wrote them there. What this replica knows besides (last seen, models) is kept."""
        stored = await self._store.miner(miner_id)
        current = self._records.get(miner_id)
        if stored is None or stored.stats.updated_at is None:
            return
        if current is None:
            self._records[miner_id] = stored
        elif current.stats.updated_at is None or stored.stats.updated_at > current.stats.updated_at:
            self._records[miner_id] = replace(current, stats=stored.stats)
        else:
            return
        self._notify(miner_id)

    def records(self) -> list[MinerRecord]:
        return sorted(self._records.values(), key=lambda record: record.miner_id)

    def owner_of(self, miner_id: str) -> str | None:
        """The account of the key that last ran `miner_id` (the account its earnings go to)."""
        record = self._records.get(miner_id)
        return None if record is None else record.owner_id

    def stats(self, miner_id: str) -> MinerStats:
        record = self._records.get(miner_id)
        return record.stats if record else MinerStats()

    def score(self, miner_id: str) -> int:
        return self.stats(miner_id).score(self._clock.now())

    def seen(self, session: MinerSession) -> None:
        """Note a miner's (re)appearance: who owns it, what it serves."""
        known = self._records.get(session.miner_id)
        self._put(
            MinerRecord(
                miner_id=session.miner_id,
                owner_id=session.principal.owner_id,
                stats=known.stats if known else MinerStats(),
                last_seen=self._clock.now(),
                models=tuple(sorted(session.models)),
                backend=session.info.backend,
            )
        )

    def last_seen_at(self, miner_id: str, moment: datetime) -> None:
        """Note a departing miner's last sign of life, which listings show while it is away."""
        record = self._records.get(miner_id)
        if record is not None and moment > record.last_seen:
            self._put(replace(record, last_seen=moment))

    def completed(self, miner_id: str, *, tokens_per_second: float, ttft_seconds: float) -> None:
        now = self._clock.now()
        self._update(
            miner_id,
            lambda stats: stats.with_completion(now, tokens_per_second=tokens_per_second, ttft_seconds=ttft_seconds),
        )

    def failed(self, miner_id: str) -> None:
        now = self._clock.now()
        self._update(miner_id, lambda stats: stats.with_failure(now))

    def caused_cancellation(self, miner_id: str) -> None:
        now = self._clock.now()
        self._update(miner_id, lambda stats: stats.with_cancellation(now))

    def lease_expired(self, miner_id: str) -> None:
        now = self._clock.now()
        # Its silence is why the lease ran out: the miner was last seen before now.
        self._update(miner_id, lambda stats: stats.with_lease_expiry(now), seen=False)

    async def flush(self) -> None:
        """Write every pending update now and wait until it is stored (or the store refuses it)."""
        self._flush_now.set()
        if self._dirty and (self._writer is None or self._writer.done()):
            # Left over from a write the store refused: try them again now, not only at the next update.
            self._writer = asyncio.create_task(self._write_behind(), name="reputation writer")
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def _update(self, miner_id: str, change: Callable[[MinerStats], MinerStats], *, seen: bool = True) -> None:
        record = self._records.get(miner_id)
        if record is None:
            return  # only miners that said hello are tracked
        last_seen = self._clock.now() if seen else record.last_seen
        self._put(replace(record, stats=change(record.stats), last_seen=last_seen))

    def _put(self, record: MinerRecord) -> None:
        self._records[record.miner_id] = record
        self._notify(record.miner_id)
        self._dirty.add(record.miner_id)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_behind(), name="reputation writer")

    def _notify(self, miner_id: str) -> None:
        for watcher in self._watchers:
            watcher(miner_id)

    async def _write_behind(self) -> None:
        with contextlib.suppress(TimeoutError):
            await self._clock.wait_for(self._flush_now.wait(), self._write_delay)
        while self._dirty:
            # Many at once: 10,000 miners connecting took one commit each, for half a minute on PostgreSQL.
            batch = [self._dirty.pop() for _ in range(min(len(self._dirty), WRITE_BATCH))]
            try:
                await self._store.save_miners([self._records[miner_id] for miner_id in batch])
            except StoreUnavailableError:
                # The store's health reports the failure; the next update writes these again.
                self._dirty.update(batch)
                return
            except Exception:
                # Reputation is advisory: losing one update must not take the coordinator down.
                log.exception("storing the reputation of %d miner(s) failed", len(batch))
