"""Job TTLs: one timer for the earliest deadline, however many jobs wait."""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aitbc.coordinator.clock import Clock, Timer
from aitbc.domain.jobs import JobRecord

log = logging.getLogger(__name__)


class ExpiryTimer:
    """Calls `expire(job_id)` once each registered job's `expires_at` has passed.

    Jobs that stopped waiting meanwhile are the callback's to ignore; the timer
    does not track them, which keeps registration O(log n) and removal free.
    """

    def __init__(self, expire: Callable[[str], Awaitable[None]], clock: Clock) -> None:
        self._expire = expire
        self._clock = clock
        self._deadlines: list[tuple[datetime, str]] = []
        self._timer: Timer | None = None
        self._running: set[asyncio.Task[None]] = set()

    def add(self, record: JobRecord) -> None:
        if record.expires_at is None:
            return
        heapq.heappush(self._deadlines, (record.expires_at, record.job_id))
        if self._deadlines[0][1] == record.job_id:
            self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in self._running:
            task.cancel()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._deadlines:
            delay = (self._deadlines[0][0] - self._clock.now()).total_seconds()
            self._timer = self._clock.call_later(delay, self._fire)

    def _fire(self) -> None:
        now = self._clock.now()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._deadlines)
            task = asyncio.create_task(self._expire_logged(job_id), name=f"expire-{job_id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        self._arm()

    async def _expire_logged(self, job_id: str) -> None:
        try:
            await self._expire(job_id)
        except Exception:
            log.exception("expiring %s failed", job_id)
