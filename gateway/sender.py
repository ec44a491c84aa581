"""The one writer of a WebSocket: a bounded queue, one sending task, and a close that reaches the client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from gateway.limits import DEFAULT_SEND_QUEUE_FRAMES, DEFAULT_SEND_STALL_SECONDS
from gateway.streaming import encode_json

log = logging.getLogger(__name__)

SEND_QUEUE_SIZE: Final = DEFAULT_SEND_QUEUE_FRAMES
SEND_STALL_TIMEOUT: Final = DEFAULT_SEND_STALL_SECONDS
# How long a close frame may wait for the client to make room for it.
CLOSE_TIMEOUT: Final = 10.0

CLOSE_NORMAL: Final = 1000
CLOSE_TRY_AGAIN_LATER: Final = 1013
SLOW_READER: Final = "client reads too slowly; reconnect and resume from the last seq"
# Sent after a quiet spell: browsers expose no ping frames, so a client's read timeout needs a message.
KEEPALIVE_FRAME: Final = encode_json({"type": "keepalive"})


class SocketClosed(Exception):
    """The socket's sender has stopped; nothing more can be sent."""


class BoundedSender:
    """The one writer of a socket: a bounded queue drained by one task, in order.

    Producers wait while the queue is full; when it stays full for
    `stall_timeout` the reader is too slow, and rather than buffer without
    bound or drop events the socket is closed with 1013 (try again later).
    The client can reconnect and resume each job from the last `seq` it saw.

    A slow reader's close frame queues behind the frames it has not read:
    uvicorn sends nothing while its buffer is full. So the close runs in a
    task of its own that waits up to `close_timeout` for the client to read
    again, and nobody who awaits it (a producer, the session ending) can
    cancel it halfway and leave the client with a dropped connection and no
    close code.
    """

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        *,
        max_queued: int = SEND_QUEUE_SIZE,
        stall_timeout: float = SEND_STALL_TIMEOUT,
        close_timeout: float = CLOSE_TIMEOUT,
        keepalive_seconds: float | None = None,
    ) -> None:
        self._send_text = send_text
        self._keepalive_seconds = keepalive_seconds
        self._close = close
        self._queue: asyncio.Queue[str] = asyncio.Queue(max_queued)
        self._stall_timeout = stall_timeout
        self._close_timeout = close_timeout
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        # Set once nothing more will be sent: closed, overflowed, or the send failed.
        self.stopped = asyncio.Event()
        self.close_code: int | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="websocket-sender")

    async def _run(self) -> None:
        try:
            while True:
                try:
                    text = await asyncio.wait_for(self._queue.get(), self._keepalive_seconds)
                except TimeoutError:
                    await self._send_text(KEEPALIVE_FRAME)
                    continue
                await self._send_text(text)
                self._queue.task_done()
        except Exception:
            # The peer went away mid-send; the session notices `stopped`.
            log.debug("websocket send failed", exc_info=True)
        finally:
            self.stopped.set()

    async def put(self, frame: Mapping[str, Any]) -> None:
        if self.stopped.is_set():
            raise SocketClosed
        try:
            await asyncio.wait_for(self._queue.put(encode_json(frame)), self._stall_timeout)
        except TimeoutError:
            if self._closing is None:
                log.info("closing a WebSocket with 1013: its client reads too slowly")
            await self._shut(CLOSE_TRY_AGAIN_LATER, SLOW_READER)
            raise SocketClosed from None

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Send what is queued (for up to the stall timeout), then close the socket."""
        if not self.stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self._stall_timeout)
        await self._shut(code, reason)

    async def _shut(self, code: int, reason: str) -> None:
        """Stop sending and close with `code`, once; every caller waits for that one close."""
        if self._closing is None:
            self.close_code = code
            self._closing = asyncio.create_task(self._send_close(code, reason), name="websocket-close")
        # Shielded: a caller cancelled meanwhile leaves the close to finish.
        await asyncio.shield(self._closing)

    async def _send_close(self, code: int, reason: str) -> None:
        await self.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._close(code, reason), self._close_timeout)

    async def abort(self) -> None:
        """Stop sending without closing: the peer is already gone."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait((self._task,))
        self.stopped.set()
