"""The outbound side of the miner's stream: one bounded queue, one writer, token text coalesced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aitbc.v1 import miner_pb2


class StreamWriter(Protocol):
    """The sending half of a `MinerService.Connect` call."""

    async def write(self, request: miner_pb2.ConnectRequest) -> None: ...

    async def done_writing(self) -> None: ...


@dataclass(eq=False)
class _TokenBatch:
    """Token text of one job that waits in the queue and still grows; built into a JobTokens when written."""

    job_id: str
    attempt: int
    pieces: list[str] = field(default_factory=list)
    token_count: int = 0
    size: int = 0

    def add(self, text: str, token_count: int, size: int) -> None:
        self.pieces.append(text)
        self.token_count += token_count
        self.size += size

    def to_request(self) -> miner_pb2.ConnectRequest:
        tokens = miner_pb2.JobTokens(
            job_id=self.job_id, attempt=self.attempt, text="".join(self.pieces), token_count=self.token_count
        )
        return miner_pb2.ConnectRequest(tokens=tokens)


class _Heartbeat:
    """A heartbeat in the queue; built when written so it reports the state of that moment."""


class _Close:
    """Everything before it is written: half-close the stream."""


_HEARTBEAT = _Heartbeat()
_CLOSE = _Close()


class Outbox:
    """Messages waiting for the stream's one writer.

    Every message goes through one bounded queue that a single writer drains, awaiting each write, so the
    stream's flow control reaches the senders: once the queue is full, they wait.

    Token text is coalesced: text a job sends while its previous token batch still waits in the queue joins that
    batch (up to `max_batch_bytes`) instead of becoming another message. A stream that keeps up carries every
    chunk as it comes; one that falls behind carries fewer, larger JobTokens, and the queue holds about one batch
    per job rather than one message per token. Nothing is dropped, and a job's messages keep their order: only a
    job's newest waiting batch grows, and the job sends its JobDone, JobFailed or CancelAck after its last text,
    so that message lands behind the batch. Heartbeats are coalesced too: at most one waits at a time.

    Memory is bounded by `max_messages` times `max_batch_bytes`; a job whose sending waits stops pulling tokens
    from its backend, so a slow stream slows generation instead of growing a backlog.
    """

    def __init__(
        self, *, max_messages: int, max_batch_bytes: int, heartbeat: Callable[[], miner_pb2.Heartbeat]
    ) -> None:
        self._queue: asyncio.Queue[miner_pb2.ConnectRequest | _TokenBatch | _Heartbeat | _Close] = asyncio.Queue(
            max_messages
        )
        self._max_batch_bytes = max_batch_bytes
        self._heartbeat = heartbeat
        # Each job's batch that is in the queue and may still grow.
        self._open_batches: dict[tuple[str, int], _TokenBatch] = {}
        self._heartbeat_waiting = False

    async def send(self, request: miner_pb2.ConnectRequest) -> None:
        await self._queue.put(request)

    async def send_tokens(self, job_id: str, attempt: int, text: str, token_count: int) -> None:
        size = len(text.encode())
        batch = self._open_batches.get((job_id, attempt))
        if batch is not None and batch.size + size <= self._max_batch_bytes:
            batch.add(text, token_count, size)
            return
        batch = _TokenBatch(job_id, attempt)
        batch.add(text, token_count, size)
        await self._queue.put(batch)
        # Registered only once queued, so that a send cancelled while it waited for room leaves nothing behind.
        self._open_batches[(job_id, attempt)] = batch

    async def send_heartbeat(self) -> None:
        if self._heartbeat_waiting:
            return
        await self._queue.put(_HEARTBEAT)
        self._heartbeat_waiting = True

    async def close(self) -> None:
        """Half-close the stream once everything queued so far is written."""
        await self._queue.put(_CLOSE)

    async def write_to(self, stream: StreamWriter) -> None:
        """Be the one writer: write every message in order, each write awaited, until `close`."""
        while True:
            item = await self._queue.get()
            # Taken off the queue before the next await, so nothing can join a batch that is being written.
            if isinstance(item, _Close):
                await stream.done_writing()
                return
            if isinstance(item, _TokenBatch):
                if self._open_batches.get((item.job_id, item.attempt)) is item:
                    del self._open_batches[(item.job_id, item.attempt)]
                request = item.to_request()
            elif isinstance(item, _Heartbeat):
                self._heartbeat_waiting = False
                request = miner_pb2.ConnectRequest(heartbeat=self._heartbeat())
            else:
                request = item
            await stream.write(request)
