"""A miner driven step by step by a test, speaking the raw MinerService protocol.

The real agent (miner/) decides for itself; protocol edge cases (fencing, late
messages, acks) need a peer that does exactly what the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType

import grpc.aio
from google.rpc import error_details_pb2, status_pb2

from aitbc.v1 import miner_pb2, miner_pb2_grpc

STEP_TIMEOUT = 10.0


class ScriptedMiner:
    def __init__(self, target: str, api_key: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = miner_pb2_grpc.MinerServiceStub(self._channel)
        self._outgoing: asyncio.Queue[miner_pb2.ConnectRequest | None] = asyncio.Queue()
        self._call = self._stub.Connect(self._requests(), metadata=(("x-api-key", api_key),))
        # Reading in a task of its own: cancelling a pending read() would
        # cancel the whole call, so tests wait on this queue instead.
        self.received: asyncio.Queue[miner_pb2.ConnectResponse | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for response in self._call:
                await self.received.put(response)
        except grpc.aio.AioRpcError:
            pass
        finally:
            await self.received.put(None)

    async def _requests(self) -> AsyncIterator[miner_pb2.ConnectRequest]:
        while (request := await self._outgoing.get()) is not None:
            yield request

    async def hello(
        self,
        miner_id: str,
        models: list[str],
        max_concurrency: int = 1,
        *,
        vram_gib: int = 24,
        payout_address: str = "",
    ) -> miner_pb2.Welcome:
        """Say hello as a miner with one GPU of `vram_gib` (0: a CPU miner); returns the Welcome."""
        gpus = [miner_pb2.GpuInfo(name="Scripted GPU", vram_bytes=vram_gib << 30, count=1)] if vram_gib else []
        hello = miner_pb2.MinerHello(
            miner_id=miner_id,
            models=models,
            max_concurrency=max_concurrency,
            backend="scripted",
            gpus=gpus,
            payout_address=payout_address,
        )
        await self.send(miner_pb2.ConnectRequest(hello=hello))
        return (await self.expect("welcome")).welcome

    async def send(self, request: miner_pb2.ConnectRequest) -> None:
        await self._outgoing.put(request)

    async def expect(self, kind: str) -> miner_pb2.ConnectResponse:
        response = await asyncio.wait_for(self.received.get(), STEP_TIMEOUT)
        assert response is not None, f"stream ended while waiting for {kind}"
        assert response.WhichOneof("msg") == kind, f"expected {kind}, got {response}"
        return response

    async def tokens(self, job_id: str, attempt: int, *texts: str) -> None:
        for text in texts:
            await self.send(
                miner_pb2.ConnectRequest(
                    tokens=miner_pb2.JobTokens(job_id=job_id, attempt=attempt, text=text, token_count=1)
                )
            )

    async def started(self, job_id: str, attempt: int, prompt_tokens: int = 5) -> None:
        await self.send(
            miner_pb2.ConnectRequest(
                started=miner_pb2.JobStarted(job_id=job_id, attempt=attempt, prompt_tokens=prompt_tokens)
            )
        )

    async def done(self, job_id: str, attempt: int, output: str, completion_tokens: int) -> None:
        await self.send(
            miner_pb2.ConnectRequest(
                done=miner_pb2.JobDone(
                    job_id=job_id,
                    attempt=attempt,
                    output=output,
                    prompt_tokens=5,
                    completion_tokens=completion_tokens,
                    finish_reason="length",
                )
            )
        )

    def finished(self) -> bool:
        """Whether the coordinator has ended the stream."""
        return self._call.done()

    async def status(self) -> grpc.StatusCode:
        return await asyncio.wait_for(self._call.code(), STEP_TIMEOUT)

    async def error_field(self) -> str:
        """The request field the coordinator's rich status blames for ending the stream."""
        trailers = await asyncio.wait_for(self._call.trailing_metadata(), STEP_TIMEOUT)
        for key, value in trailers or ():
            if key == "grpc-status-details-bin":
                for detail in status_pb2.Status.FromString(value).details:
                    info = error_details_pb2.ErrorInfo()
                    if detail.Unpack(info):
                        return str(info.metadata["field"])
        return ""

    async def close(self) -> None:
        """Drop the connection abruptly, like a crashed miner."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._call.cancel()
        await self._channel.close()

    async def finish(self) -> None:
        """End the stream cleanly from the miner's side."""
        await self._outgoing.put(None)

    async def __aenter__(self) -> ScriptedMiner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
