"""MinerService: one bidirectional stream per miner.

The handler is the stream's only writer: it yields the session's commands.
A reader task feeds the miner's messages to the coordinator. When either side
ends, the session closes and the miner's jobs go back to pending.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from google.protobuf import duration_pb2

from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import MinerSession
from aitbc.domain.errors import AitbcError, Reason
from aitbc.services.convert import (
    STATE_TO_PROTO,
    assign_to_proto,
    available_job_to_proto,
    command_to_proto,
    miner_info_from_hello,
    miner_info_from_registration,
)
from aitbc.services.errors import wire_fields
from aitbc.services.interceptors import Context, current_principal
from aitbc.v1 import miner_pb2, miner_pb2_grpc

HELLO_TIMEOUT_SECONDS = 10.0

# The miner's fields as each miner API spells them: the stream's hello, the HTTP registration.
_HELLO_FIELDS = {
    name: f"hello.{name}"
    for name in ("miner_id", "models", "max_concurrency", "backend", "version", "gpus", "prices", "public_key")
}
_DONE_FIELDS = {name: f"done.{name}" for name in ("prompt_tokens", "completion_tokens")}
_REGISTRATION_FIELDS = {"models": "capabilities", "gpus": "gpu_info"}


def _protocol_error(message: str, field: str) -> AitbcError:
    return AitbcError(Reason.MINER_PROTOCOL_ERROR, message, field=field)


class MinerService(miner_pb2_grpc.MinerServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def Connect(
        self, request_iterator: AsyncIterator[miner_pb2.ConnectRequest], context: Context
    ) -> AsyncIterator[miner_pb2.ConnectResponse]:
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT_SECONDS)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _protocol_error(f"no hello within {HELLO_TIMEOUT_SECONDS:g}s", "hello") from None
        if first.WhichOneof("msg") != "hello":
            raise _protocol_error("the first message on the stream must be a hello", "hello")
        with wire_fields(_HELLO_FIELDS):
            session = await self._coordinator.attach_miner(current_principal(), miner_info_from_hello(first.hello))
        reader = asyncio.create_task(self._read(request_iterator, session), name=f"miner-reader-{session.miner_id}")
        reason = "the stream ended"
        try:
            async for command in session.commands():
                yield command_to_proto(command)
            if reader.done() and not reader.cancelled() and (error := reader.exception()) is not None:
                reason = str(error)
                raise error
        except asyncio.CancelledError:
            reason = "the connection dropped"
            raise
        finally:
            reader.cancel()
            # Its error, if any, was raised above.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await asyncio.shield(self._coordinator.miner_gone(session, reason))

    async def _read(self, requests: AsyncIterator[miner_pb2.ConnectRequest], session: MinerSession) -> None:
        try:
            async for request in requests:
                self._coordinator.touch(session)
                await self._handle(session, request)
        finally:
            session.close()

    async def _handle(self, session: MinerSession, request: miner_pb2.ConnectRequest) -> None:
        coordinator = self._coordinator
        reports = coordinator.reports
        match request.WhichOneof("msg"):
            case "heartbeat":
                coordinator.heartbeat(session, draining=request.heartbeat.draining)
            case "started":
                started = request.started
                with wire_fields({"prompt_tokens": "started.prompt_tokens"}):
                    await reports.started(session, started.job_id, started.attempt, started.prompt_tokens)
            case "tokens":
                tokens = request.tokens
                if tokens.token_count < 0:
                    raise _protocol_error("token_count must not be negative", "tokens.token_count")
                await reports.tokens(session, tokens.job_id, tokens.attempt, tokens.text, tokens.token_count)
            case "done":
                done = request.done
                with wire_fields(_DONE_FIELDS):
                    await reports.done(
                        session,
                        done.job_id,
                        done.attempt,
                        output=done.output,
                        prompt_tokens=done.prompt_tokens,
                        completion_tokens=done.completion_tokens,
                        finish_reason=done.finish_reason,
                        signature=done.signature,
                    )
            case "failed":
                failed = request.failed
                await reports.failed(
                    session, failed.job_id, failed.attempt, error=failed.error, retryable=failed.retryable
                )
            case "cancel_ack":
                ack = request.cancel_ack
                reports.cancel_acknowledged(session, ack.job_id, ack.attempt, ack.completion_tokens)
            case "hello":
                raise _protocol_error("hello may be sent only once per stream", "hello")
            case _:
                raise _protocol_error("empty message", "msg")

    # The polling (HTTP) miner API.

    async def RegisterMiner(
        self, request: miner_pb2.RegisterMinerRequest, context: Context
    ) -> miner_pb2.RegisterMinerResponse:
        with wire_fields(_REGISTRATION_FIELDS):
            session = await self._coordinator.polling.register(
                current_principal(), miner_info_from_registration(request)
            )
        interval = duration_pb2.Duration()
        interval.FromTimedelta(self._coordinator.heartbeat_interval)
        return miner_pb2.RegisterMinerResponse(miner_id=session.miner_id, heartbeat_interval=interval)

    async def MinerHeartbeat(
        self, request: miner_pb2.MinerHeartbeatRequest, context: Context
    ) -> miner_pb2.MinerHeartbeatResponse:
        held = self._coordinator.polling.heartbeat(current_principal(), request.miner_id)
        return miner_pb2.MinerHeartbeatResponse(job_ids=held)

    async def ListAvailableJobs(
        self, request: miner_pb2.ListAvailableJobsRequest, context: Context
    ) -> miner_pb2.ListAvailableJobsResponse:
        jobs = self._coordinator.polling.available(current_principal(), request.miner_id, request.limit)
        return miner_pb2.ListAvailableJobsResponse(jobs=[available_job_to_proto(job) for job in jobs])

    async def ClaimJob(self, request: miner_pb2.ClaimJobRequest, context: Context) -> miner_pb2.ClaimJobResponse:
        assignment = await self._coordinator.polling.claim(current_principal(), request.miner_id, request.job_id)
        return miner_pb2.ClaimJobResponse(assignment=assign_to_proto(assignment))

    async def CompleteJob(
        self, request: miner_pb2.CompleteJobRequest, context: Context
    ) -> miner_pb2.CompleteJobResponse:
        record = await self._coordinator.polling.complete(
            current_principal(),
            request.miner_id,
            request.job_id,
            attempt=request.attempt,
            result=request.result,
            prompt_tokens=request.prompt_tokens,
            completion_tokens=request.completion_tokens,
            finish_reason=request.finish_reason,
            signature=request.signature,
        )
        return miner_pb2.CompleteJobResponse(job_id=record.job_id, status=STATE_TO_PROTO[record.state])

    async def FailJob(self, request: miner_pb2.FailJobRequest, context: Context) -> miner_pb2.FailJobResponse:
        record = await self._coordinator.polling.fail(
            current_principal(),
            request.miner_id,
            request.job_id,
            attempt=request.attempt,
            error=request.error,
            retryable=request.retryable,
        )
        return miner_pb2.FailJobResponse(job_id=record.job_id, status=STATE_TO_PROTO[record.state])
