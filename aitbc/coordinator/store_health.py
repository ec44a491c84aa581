"""Whether the store takes writes, and getting back to work once it does again.

A write that fails (a full disk, a read-only file) marks the store failing:
the log says so once, submits get STORE_UNAVAILABLE with a retry delay, and
dispatch pauses. One task probes the store with exponential backoff; when a
probe write succeeds, the log says so once and `on_recovered` repairs the
jobs whose writes failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aitbc.coordinator.clock import Clock
from aitbc.domain.errors import AitbcError, Reason
from aitbc.store.base import Store, StoreUnavailableError

log = logging.getLogger(__name__)

# Probes back off from a tenth of a second to this, and clients are asked to wait about as long.
MAX_PROBE_INTERVAL = 5.0
RETRY_AFTER_SECONDS = 5.0


class StoreUnavailable(AitbcError):
    """STORE_UNAVAILABLE: nothing of the call was stored; the caller may retry after the delay."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            Reason.STORE_UNAVAILABLE,
            f"the coordinator cannot write to its store ({detail}); retry later",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )


class StoreHealth:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._failure = ""
        self._probe: asyncio.Task[None] | None = None
        self._recovered = asyncio.Event()
        self._recovered.set()
        self.on_recovered: Callable[[], Awaitable[None]] | None = None

    def healthy(self) -> bool:
        return not self._failure

    def check(self) -> None:
        """Refuse new work while the store is failing."""
        if self._failure:
            raise StoreUnavailable(self._failure)

    def failed(self, error: StoreUnavailableError) -> StoreUnavailable:
        """Note a failed write; returns the error to give the caller."""
        if not self._failure:
            self._failure = str(error)
            self._recovered = asyncio.Event()
            log.error("the store is failing: %s; pausing dispatch and retrying with backoff", error)
            self._probe = asyncio.create_task(self._probe_until_writable(), name="aitbc-store-probe")
        return StoreUnavailable(self._failure)

    async def wait_recovered(self) -> None:
        """Until the store takes writes again and the jobs it stranded are repaired."""
        await self._recovered.wait()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    async def _probe_until_writable(self) -> None:
        # Imported here: only a failing store needs it, and `aitbc status` must stay light.
        from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailableError),
            wait=wait_exponential(multiplier=0.1, max=MAX_PROBE_INTERVAL),
            sleep=self._clock.sleep,
        )
        async for attempt in retrying:
            with attempt:
                await self._store.probe()
        failure, self._failure = self._failure, ""
        log.warning("the store recovered (it had failed with: %s); resuming", failure)
        try:
            if self.on_recovered is not None:
                await self.on_recovered()
        except Exception:
            log.exception("repairing jobs after the store recovered failed")
        finally:
            self._recovered.set()
