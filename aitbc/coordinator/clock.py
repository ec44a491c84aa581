"""The coordinator's one clock: wall time, monotonic time and timers.

Leases, TTLs, cancel timeouts and reputation all read time and set timers
through a `Clock`, so that tests can move a `ManualClock` forward instead of
sleeping (as temporalio's time-skipping test server does).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time (UTC), for what is stored and shown."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go back, for measuring intervals."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop once `delay` seconds have passed."""
        ...

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """`awaitable`'s result, or TimeoutError once `seconds` have passed (it is then cancelled)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time: the event loop's timers and clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(awaitable, seconds)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _ManualTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time that moves only when a test calls `advance`; timers fire in deadline order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (self._mono + max(delay, 0.0), next(self._order), timer))
        return timer

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        task = asyncio.ensure_future(awaitable)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = self.call_later(seconds, expire)
        try:
            return await task
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing each timer that falls due at its own deadline.

        Between timers the event loop runs, so that what one timer starts (a
        task requeueing a lost miner's jobs, say) settles before the next.
        """
        target = self._mono + seconds
        while self._timers and self._timers[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._timers)
            self._move_to(deadline)
            if not timer.cancelled:
                timer.callback()
                await _settle()
        self._move_to(target)
        await _settle()

    def _move_to(self, mono: float) -> None:
        if mono > self._mono:
            self._wall += timedelta(seconds=mono - self._mono)
            self._mono = mono


async def _settle(rounds: int = 20) -> None:
    # Let tasks woken by a timer run (a few hops: timer → task → store thread → task).
    for _ in range(rounds):
        await asyncio.sleep(0)
