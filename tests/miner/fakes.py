"""Fakes for miner tests.

`FakeCoordinator` serves `MinerService.Connect` on a real grpc.aio server, driven by the test: each stream
records what the miner sends and lets the test push assignments, cancels and drains. It answers the hello with
a Welcome itself and ends the call when the miner half-closes, as the real coordinator does.

`GatedBackend` is the synthetic backend with a gate: it emits a token only when the test lets one through, so
a test can hold a job at an exact point.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf import duration_pb2

from aitbc.config import API_KEY_METADATA
from aitbc.v1 import jobs_pb2, miner_pb2, miner_pb2_grpc
from miner.agent import MinerAgent
from miner.backends.base import Backend, GenerationRequest, TokenChunk
from miner.backends.synthetic import SyntheticBackend
from miner.config import MinerConfig

API_KEY = "test-miner-key"
# Deadline for each awaited step: generous, since a step that works takes milliseconds.
STEP_TIMEOUT = 10.0


def agent_config(port: int, **changes: Any) -> MinerConfig:
    """An agent's settings for the fake on `port`, with backoff small enough that reconnecting takes milliseconds."""
    settings: dict[str, Any] = {
        "miner_id": "miner-under-test",
        "reconnect_initial_backoff": 0.01,
        "reconnect_max_backoff": 0.2,
    }
    return MinerConfig(coordinator=f"127.0.0.1:{port}", api_key=API_KEY, **(settings | changes))


Context = grpc.aio.ServicerContext[miner_pb2.ConnectRequest, miner_pb2.ConnectResponse]


class MinerStream:
    """One Connect call, seen from the coordinator's side."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        # Everything the miner sent, in order; None once its side of the stream ended.
        self.received: asyncio.Queue[miner_pb2.ConnectRequest | None] = asyncio.Queue()
        self.log: list[miner_pb2.ConnectRequest] = []
        self._outgoing: asyncio.Queue[miner_pb2.ConnectResponse | None] = asyncio.Queue()
        self.hello = miner_pb2.MinerHello()

    async def assign(
        self,
        job_id: str,
        prompt: str,
        *,
        model: str = "synthetic",
        max_tokens: int = 16,
        attempt: int = 1,
        resume_text: str = "",
        resume_tokens: int = 0,
        **params: Any,
    ) -> None:
        sampling = jobs_pb2.SamplingParams(max_tokens=max_tokens, temperature=0.7, top_p=0.9)
        for name, value in params.items():
            if name == "stop":
                sampling.stop.extend(value)
            else:
                setattr(sampling, name, value)
        assignment = miner_pb2.AssignJob(
            job_id=job_id,
            attempt=attempt,
            prompt=prompt,
            model=model,
            params=sampling,
            resume_text=resume_text,
            resume_tokens=resume_tokens,
        )
        await self.send(miner_pb2.ConnectResponse(assign=assignment))

    async def cancel(self, job_id: str, attempt: int = 1) -> None:
        await self.send(miner_pb2.ConnectResponse(cancel=miner_pb2.CancelAssignment(job_id=job_id, attempt=attempt)))

    async def drain(self, reason: str = "test") -> None:
        await self.send(miner_pb2.ConnectResponse(drain=miner_pb2.Drain(reason=reason)))

    async def send(self, response: miner_pb2.ConnectResponse) -> None:
        await self._outgoing.put(response)

    def end(self) -> None:
        """End the call from the coordinator's side, with an OK status."""
        self._outgoing.put_nowait(None)

    async def responses(self) -> AsyncIterator[miner_pb2.ConnectResponse]:
        while (response := await self._outgoing.get()) is not None:
            yield response

    async def next(self, kind: str) -> miner_pb2.ConnectRequest:
        """The next message of `kind`; other kinds in between must be heartbeats."""
        while True:
            request = await self._next()
            if request is None:
                raise AssertionError(f"the miner ended the stream while the test waited for {kind}")
            received = request.WhichOneof("msg")
            if received == kind:
                return request
            assert received == "heartbeat", f"expected {kind}, got {request}"

    async def next_heartbeat(self) -> miner_pb2.Heartbeat:
        """The next heartbeat, passing over whatever comes before it."""
        while True:
            request = await self._next()
            if request is None:
                raise AssertionError("the miner ended the stream while the test waited for a heartbeat")
            if request.WhichOneof("msg") == "heartbeat":
                return request.heartbeat

    async def until(self, kind: str, job_id: str) -> list[miner_pb2.ConnectRequest]:
        """Messages about `job_id` up to and including the first of `kind`."""
        about_job: list[miner_pb2.ConnectRequest] = []
        while True:
            request = await self._next()
            if request is None:
                raise AssertionError(f"the miner ended the stream while the test waited for {kind} of {job_id}")
            received = request.WhichOneof("msg")
            if received != "heartbeat" and getattr(request, str(received)).job_id == job_id:
                about_job.append(request)
                if received == kind:
                    return about_job

    async def ended(self) -> None:
        """Wait until the miner has ended its side of the stream."""
        while await self._next() is not None:
            pass

    async def _next(self) -> miner_pb2.ConnectRequest | None:
        return await asyncio.wait_for(self.received.get(), STEP_TIMEOUT)


def new_fake_coordinator() -> FakeCoordinator:
    # The stubs mark the polling-miner RPCs abstract; the agent never calls them and the generated base
    # class answers them UNIMPLEMENTED at run time.
    return FakeCoordinator()  # type: ignore[abstract]


class FakeCoordinator(miner_pb2_grpc.MinerServiceServicer):
    def __init__(self, *, heartbeat_interval: float = 60.0) -> None:
        self.heartbeat_interval = heartbeat_interval
        self._streams: asyncio.Queue[MinerStream] = asyncio.Queue()

    async def next_stream(self) -> MinerStream:
        """The next stream a miner opened, once its hello arrived."""
        return await asyncio.wait_for(self._streams.get(), STEP_TIMEOUT)

    async def Connect(
        self, request_iterator: AsyncIterator[miner_pb2.ConnectRequest], context: Context
    ) -> AsyncIterator[miner_pb2.ConnectResponse]:
        api_key = dict(context.invocation_metadata() or ()).get(API_KEY_METADATA)
        if api_key != API_KEY:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
        stream = MinerStream(api_key)
        first = await anext(request_iterator)
        stream.hello.CopyFrom(first.hello)
        interval = duration_pb2.Duration()
        interval.FromNanoseconds(round(self.heartbeat_interval * 1e9))
        yield miner_pb2.ConnectResponse(
            welcome=miner_pb2.Welcome(miner_id=first.hello.miner_id, heartbeat_interval=interval)
        )
        reader = asyncio.create_task(self._read(request_iterator, stream))
        await self._streams.put(stream)
        try:
            async for response in stream.responses():
                yield response
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    @staticmethod
    async def _read(requests: AsyncIterator[miner_pb2.ConnectRequest], stream: MinerStream) -> None:
        try:
            async for request in requests:
                stream.log.append(request)
                await stream.received.put(request)
        finally:
            await stream.received.put(None)
            # The miner half-closed (or went away): end the call, as the coordinator does.
            stream.end()


@contextlib.asynccontextmanager
async def serving(coordinator: FakeCoordinator, port: int = 0) -> AsyncIterator[int]:
    """The fake on 127.0.0.1; yields the port, which a restart can bind again."""
    server = grpc.aio.server()
    miner_pb2_grpc.add_MinerServiceServicer_to_server(coordinator, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield bound
    finally:
        await server.stop(grace=None)


class GatedBackend(SyntheticBackend):
    """Unpaced synthetic text, one token per permit from `let_through`."""

    def __init__(self) -> None:
        super().__init__(tokens_per_second=0)
        self._permits = asyncio.Semaphore(0)
        # Generations that have started and not yet ended, however they ended.
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def let_through(self, tokens: int) -> None:
        for _ in range(tokens):
            self._permits.release()

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenChunk, None]:
        self.running += 1
        self.idle.clear()
        try:
            async with contextlib.aclosing(super().generate(request)) as chunks:
                async for chunk in chunks:
                    await self._permits.acquire()
                    yield chunk
        finally:
            self.running -= 1
            if not self.running:
                self.idle.set()


@dataclass(frozen=True)
class RunningAgent:
    agent: MinerAgent
    # The agent's `run()`.
    task: asyncio.Task[None]


class AgentFactory(Protocol):
    def __call__(self, backend: Backend | None = None, **config_changes: Any) -> RunningAgent: ...
