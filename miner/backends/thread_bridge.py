"""Hands items from a blocking producer thread to a consumer on the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class _End:
    """Marks that the producer has finished."""


_END = _End()


class ThreadBridge(Generic[T]):
    """One producer thread, one asyncio consumer, at most `capacity` items in flight.

    A slow consumer blocks the producer in `put` instead of letting items pile up, so backpressure reaches the
    engine. The producer calls `close` when it finishes, whatever the reason; the consumer calls `stop` when it
    no longer listens, which also releases a producer blocked in `put`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        # Unbounded as a queue because the credits bound it.
        self._items: asyncio.Queue[T | _End] = asyncio.Queue()
        self._credits = threading.Semaphore(capacity)
        self._stopped = threading.Event()

    # Producer thread.

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def put(self, item: T) -> bool:
        """Block until the item fits; False (and the item dropped) once the consumer stopped listening."""
        self._credits.acquire()
        if self._stopped.is_set():
            return False
        self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        return True

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._items.put_nowait, _END)

    # Event loop.

    def stop(self) -> None:
        self._stopped.set()
        self._credits.release()

    def __aiter__(self) -> ThreadBridge[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._items.get()
        if isinstance(item, _End):
            raise StopAsyncIteration
        self._credits.release()
        return item
