"""One `MinerService.Connect` stream, from the miner's hello until the stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Protocol

import grpc

from aitbc.v1 import miner_pb2
from miner.backends.base import Backend
from miner.config import MinerConfig
from miner.job import JobRun, StopReason, failed_message
from miner.outbox import Outbox, StreamWriter

log = logging.getLogger(__name__)

# A coordinator that accepted the stream answers the hello at once; one that does not is as good as down.
_WELCOME_TIMEOUT_SECONDS = 30.0
# After the miner half-closes a drained stream, how long the coordinator gets to end the call.
_CLOSE_TIMEOUT_SECONDS = 5.0


class StreamLost(Exception):
    """The stream ended without the miner having drained it."""


class ConnectCall(StreamWriter, Protocol):
    """A `MinerService.Connect` call, as grpc.aio returns it."""

    async def read(self) -> miner_pb2.ConnectResponse | object:
        """The next message, or `grpc.aio.EOF` once the coordinator ended the call."""


class Session:
    """Serves one stream: handshake, heartbeats, assignments, cancels and drain.

    The agent makes a new session for each connection. Jobs belong to the session that received them: when the
    stream ends, they are stopped (the coordinator re-queues what it did not see finish).
    """

    def __init__(
        self,
        *,
        call: ConnectCall,
        hello: miner_pb2.MinerHello,
        backend: Backend,
        config: MinerConfig,
        signing_seed: bytes,
        drain_requested: asyncio.Event,
        on_drain: Callable[[str], None],
    ) -> None:
        self._call = call
        self._hello = hello
        self._signing_seed = signing_seed
        self._backend = backend
        self._capacity = hello.max_concurrency
        self._heartbeat_interval = config.heartbeat_interval
        self._drain_grace = config.drain_grace_seconds
        # Set by the agent, whether the drain came from a signal or from the coordinator's Drain.
        self._drain_requested = drain_requested
        self._on_drain = on_drain
        self._outbox = Outbox(
            max_messages=config.outbox_max_messages,
            max_batch_bytes=config.coalesce_max_bytes,
            heartbeat=self._heartbeat,
        )
        self._jobs: dict[tuple[str, int], JobRun] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._heartbeat_due = asyncio.Event()
        # The miner half-closed the stream: the coordinator ending the call now is the expected goodbye.
        self._closing = False
        self.welcomed = False

    async def serve(self) -> None:
        """Run the stream until it ends. Returns once drained and closed; raises `grpc.aio.AioRpcError` or
        `StreamLost` when it broke or the coordinator ended it."""
        welcome = await self._handshake()
        self.welcomed = True
        if welcome.HasField("heartbeat_interval") and welcome.heartbeat_interval.ToNanoseconds() > 0:
            self._heartbeat_interval = welcome.heartbeat_interval.ToNanoseconds() / 1e9
        log.info("connected as %s; heartbeat every %.1fs", welcome.miner_id, self._heartbeat_interval)
        reader = asyncio.create_task(self._read_loop(), name="miner stream reader")
        writer = asyncio.create_task(self._write_loop(), name="miner stream writer")
        helpers = (
            asyncio.create_task(self._heartbeat_loop(), name="miner heartbeats"),
            asyncio.create_task(self._drain_when_asked(), name="miner drain"),
        )
        try:
            pending = {reader, writer, *helpers}
            while reader in pending and writer in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done - {reader}:
                    # Re-raises a bug rather than hang on a helper that died; the others end with None.
                    task.result()
            if not reader.done():
                # The writer finished: half-closed after a drain, or a write found the call over. The reader sees
                # the end of the call next, with its status.
                await asyncio.wait((reader,), timeout=_CLOSE_TIMEOUT_SECONDS)
            if reader.done():
                reader.result()
            elif not self._closing:
                raise StreamLost("a write failed but the stream did not end")
        finally:
            await self._tear_down(reader, writer, *helpers)

    async def _handshake(self) -> miner_pb2.Welcome:
        # Written before the writer task exists, so it is still the only writer.
        await self._call.write(miner_pb2.ConnectRequest(hello=self._hello))
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that arrives as the read
            # completes, and the agent's stop() then waits forever for a session that keeps serving.
            async with asyncio.timeout(_WELCOME_TIMEOUT_SECONDS):
                response = await self._call.read()
        except TimeoutError:
            raise StreamLost(f"no Welcome within {_WELCOME_TIMEOUT_SECONDS:.0f}s") from None
        if not isinstance(response, miner_pb2.ConnectResponse):
            raise StreamLost("the coordinator ended the stream before its Welcome")
        if response.WhichOneof("msg") != "welcome":
            raise StreamLost(f"expected a Welcome, got {response.WhichOneof('msg')}")
        return response.welcome

    async def _read_loop(self) -> None:
        while True:
            response = await self._call.read()
            if not isinstance(response, miner_pb2.ConnectResponse):
                # grpc.aio.EOF: the coordinator ended the call with an OK status.
                if self._closing:
                    return
                raise StreamLost("the coordinator ended the stream")
            await self._dispatch(response)

    async def _write_loop(self) -> None:
        try:
            await self._outbox.write_to(self._call)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # The call is over; the reader reports how it ended.
            return

    async def _dispatch(self, response: miner_pb2.ConnectResponse) -> None:
        match response.WhichOneof("msg"):
            case "assign":
                await self._assign(response.assign)
            case "cancel":
                self._cancel(response.cancel)
            case "drain":
                self._on_drain(response.drain.reason or "the coordinator asked")
            case other:
                log.warning("ignoring an unexpected %s message from the coordinator", other)

    async def _assign(self, assignment: miner_pb2.AssignJob) -> None:
        key = (assignment.job_id, assignment.attempt)
        if key in self._jobs:
            log.warning("job %s attempt %d is already running here; ignoring the repeat", *key)
            return
        if self._drain_requested.is_set():
            refusal = "miner is draining"
        elif len(self._jobs) >= self._capacity:
            refusal = "miner at capacity"
        else:
            job = JobRun(assignment, self._backend, self._outbox, self._signing_seed)
            self._jobs[key] = job
            self._idle.clear()
            job.start().add_done_callback(functools.partial(self._job_finished, key))
            log.info("job %s attempt %d assigned (%s)", *key, assignment.model)
            return
        log.info("job %s attempt %d refused: %s", *key, refusal)
        await self._outbox.send(failed_message(*key, refusal, retryable=True))

    def _cancel(self, cancel: miner_pb2.CancelAssignment) -> None:
        job = self._jobs.get((cancel.job_id, cancel.attempt))
        if job is None:
            # Finished (its JobDone crossed the cancel) or never ours: nothing to stop.
            log.debug("cancel for job %s attempt %d, which is not running here", cancel.job_id, cancel.attempt)
            return
        job.stop(StopReason.CANCELED)

    def _job_finished(self, key: tuple[str, int], task: asyncio.Task[None]) -> None:
        del self._jobs[key]
        if not self._jobs:
            self._idle.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("job %s attempt %d crashed", *key, exc_info=exc)

    def _heartbeat(self) -> miner_pb2.Heartbeat:
        return miner_pb2.Heartbeat(draining=self._drain_requested.is_set())

    async def _heartbeat_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._heartbeat_interval):  # not wait_for: see _handshake
                    await self._heartbeat_due.wait()
            self._heartbeat_due.clear()
            await self._outbox.send_heartbeat()

    async def _drain_when_asked(self) -> None:
        await self._drain_requested.wait()
        # Tell the coordinator at once rather than at the next beat.
        self._heartbeat_due.set()
        try:
            async with asyncio.timeout(self._drain_grace):
                await self._idle.wait()
        except TimeoutError:
            log.warning("drain grace of %gs is over; stopping %d running job(s)", self._drain_grace, len(self._jobs))
            jobs = list(self._jobs.values())
            for job in jobs:
                job.stop(StopReason.SHUTDOWN)
            if jobs:
                await asyncio.wait([job.task for job in jobs])
        self._closing = True
        await self._outbox.close()

    async def _tear_down(self, *tasks: asyncio.Task[None]) -> None:
        jobs = list(self._jobs.values())
        for job in jobs:
            job.stop(StopReason.DISCONNECTED)
        for task in tasks:
            task.cancel()
        # Every task of this session has ended before the session does.
        await asyncio.wait([*tasks, *(job.task for job in jobs)])
