"""A canned `JobService` on a real grpc.aio server, standing in for the coordinator in SDK and CLI tests."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
from google.api import httpbody_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from aitbc.v1 import jobs_pb2, jobs_pb2_grpc

T = TypeVar("T")

API_KEY = "test-client-key"
T0 = datetime(2026, 2, 13, 10, 0, tzinfo=UTC)

SUBMITTED_JOB_ID = "job_new"

Context = grpc.aio.ServicerContext[Any, Any]


def _job(job_id: str, state: jobs_pb2.JobState, model: str = "llama3.2", **fields: Any) -> jobs_pb2.Job:
    return jobs_pb2.Job(job_id=job_id, status=state, model=model, created_at=T0, **fields)


def _state(seq: int, state: jobs_pb2.JobState, **fields: Any) -> jobs_pb2.WatchJobResponse:
    change = jobs_pb2.JobStateChange(status=state, **fields)
    return jobs_pb2.WatchJobResponse(seq=seq, time=T0 + timedelta(seconds=seq), state_change=change)


def _tokens(seq: int, text: str) -> jobs_pb2.WatchJobResponse:
    chunk = jobs_pb2.TokenChunk(text=text, token_count=1)
    return jobs_pb2.WatchJobResponse(seq=seq, time=T0 + timedelta(seconds=seq), tokens=chunk)


def _completed_history(text: str) -> list[jobs_pb2.WatchJobResponse]:
    usage = jobs_pb2.Usage(prompt_tokens=3, completion_tokens=2)
    return [
        _state(1, jobs_pb2.JOB_STATE_PENDING),
        _state(2, jobs_pb2.JOB_STATE_ASSIGNED, miner_id="miner_1", attempt=1),
        _state(3, jobs_pb2.JOB_STATE_RUNNING, miner_id="miner_1", attempt=1),
        _tokens(4, text[:3]),
        _tokens(5, text[3:]),
        _state(6, jobs_pb2.JOB_STATE_COMPLETED, miner_id="miner_1", attempt=1, usage=usage),
    ]


def rich_status(
    code: grpc.StatusCode, reason: str, message: str, field: str | None = None, retry_after: int | None = None
) -> grpc.Status:
    """A status carrying `google.rpc.ErrorInfo` (and `RetryInfo`), the way the coordinator reports errors."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain="aitbc.v1", metadata={"field": field} if field else {})
    detail = any_pb2.Any()
    detail.Pack(info)
    details = [detail]
    if retry_after is not None:
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after)))
        details.append(retry)
    status: grpc.Status = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=details))
    return status


class FakeJobService(jobs_pb2_grpc.JobServiceServicer):
    """Answers from canned jobs and records every request it accepted.

    `job_done` completed with a full event history; `job_running` is still generating, so its watch stays
    open; `job_failed` failed after its miner was lost. A submitted job "runs" at once: the response says
    pending, the stored job is already completed with the prompt echoed.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, jobs_pb2.Job] = {
            "job_done": _job(
                "job_done",
                jobs_pb2.JOB_STATE_COMPLETED,
                prompt="Say hello",
                params=jobs_pb2.SamplingParams(max_tokens=100, temperature=0.7),
                result="Hello",
                progress=100,
                miner_id="miner_1",
                started_at=T0 + timedelta(minutes=1),
                completed_at=T0 + timedelta(minutes=2),
                attempt=1,
                usage=jobs_pb2.Usage(prompt_tokens=3, completion_tokens=2),
            ),
            "job_running": _job(
                "job_running",
                jobs_pb2.JOB_STATE_RUNNING,
                prompt="Write a story",
                result="Onc",
                miner_id="miner_2",
                attempt=1,
                usage=jobs_pb2.Usage(prompt_tokens=3, completion_tokens=1),
            ),
            "job_failed": _job("job_failed", jobs_pb2.JOB_STATE_FAILED, prompt="Fail", error="miner lost"),
        }
        self.events: dict[str, list[jobs_pb2.WatchJobResponse]] = {
            "job_done": _completed_history("Hello"),
            "job_running": [_state(1, jobs_pb2.JOB_STATE_PENDING), _tokens(2, "Onc")],
            "job_failed": [
                _state(1, jobs_pb2.JOB_STATE_PENDING),
                _state(2, jobs_pb2.JOB_STATE_FAILED, error="miner lost"),
            ],
        }
        # Watches of these jobs stay open after their last event, as a live job's does.
        self.held_open = {"job_running"}
        self.requests: list[Message] = []
        # Set when a watch handler is cancelled because the client ended the call; threading.Event because
        # sync-client tests wait for it from another thread than the server's loop.
        self.watch_cancelled = threading.Event()
        # Statuses the next calls of a method (by name) fail with, one per call, after being recorded.
        self.failures: dict[str, list[grpc.Status]] = {}
        # Watches of these jobs fail with UNAVAILABLE after this many events, once each.
        self.breaks: dict[str, int] = {}

    async def SubmitJob(self, request: jobs_pb2.SubmitJobRequest, context: Context) -> jobs_pb2.SubmitJobResponse:
        await self._accept(request, context)
        text = f"echo: {request.prompt}"
        job = _job(
            SUBMITTED_JOB_ID, jobs_pb2.JOB_STATE_PENDING, request.model, prompt=request.prompt, params=request.params
        )
        done = jobs_pb2.Job()
        done.CopyFrom(job)
        done.status, done.result = jobs_pb2.JOB_STATE_COMPLETED, text
        self.jobs[SUBMITTED_JOB_ID] = done
        self.events[SUBMITTED_JOB_ID] = _completed_history(text)
        return jobs_pb2.SubmitJobResponse(job=job)

    async def GetJob(self, request: jobs_pb2.GetJobRequest, context: Context) -> jobs_pb2.GetJobResponse:
        await self._accept(request, context)
        return jobs_pb2.GetJobResponse(job=await self._find(request.job_id, context))

    async def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: Context) -> jobs_pb2.ListJobsResponse:
        await self._accept(request, context)
        matching = [job for job in self.jobs.values() if request.status in (jobs_pb2.JOB_STATE_UNSPECIFIED, job.status)]
        start = int(request.page_token or 0)
        end = start + (request.limit or 50)
        next_token = str(end) if end < len(matching) else ""
        return jobs_pb2.ListJobsResponse(jobs=matching[start:end], next_page_token=next_token)

    async def CancelJob(self, request: jobs_pb2.CancelJobRequest, context: Context) -> jobs_pb2.CancelJobResponse:
        await self._accept(request, context)
        job = await self._find(request.job_id, context)
        if job.status in (jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELED):
            await self._abort(
                context,
                rich_status(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "JOB_NOT_CANCELABLE",
                    f"job {job.job_id} already finished",
                    "job_id",
                ),
            )
        canceled = jobs_pb2.Job()
        canceled.CopyFrom(job)
        canceled.status = jobs_pb2.JOB_STATE_CANCELED
        return jobs_pb2.CancelJobResponse(job=canceled)

    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.WatchJobResponse]:
        await self._accept(request, context)
        await self._find(request.job_id, context)
        breaks_after = self.breaks.pop(request.job_id, None)
        try:
            for event in self.events[request.job_id]:
                if event.seq < request.from_seq:
                    continue
                if breaks_after is not None and breaks_after == 0:
                    # As a coordinator that went away mid-stream: plain UNAVAILABLE, no rich status.
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost")
                yield event
                breaks_after = None if breaks_after is None else breaks_after - 1
            if request.job_id in self.held_open:
                await asyncio.Event().wait()
        except (asyncio.CancelledError, GeneratorExit):
            # The client ended the call: while waiting here, or while one of the events was being sent.
            self.watch_cancelled.set()
            raise

    async def WatchAccountJobs(
        self, request: jobs_pb2.WatchAccountJobsRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.WatchAccountJobsResponse]:
        """Live, and then silent: the SDK does not call it; the WebSocket opens it."""
        await self._accept(request, context)
        yield jobs_pb2.WatchAccountJobsResponse(started=T0)
        await asyncio.Event().wait()

    async def ExportJobs(
        self, request: jobs_pb2.ExportJobsRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """The document in two chunks, as a coordinator splits a long one."""
        await self._accept(request, context)
        yield httpbody_pb2.HttpBody(content_type="text/csv", data=b"job_id,status\r\n")
        yield httpbody_pb2.HttpBody(data=b"job_done,completed\r\n")

    async def GetJobStats(self, request: jobs_pb2.GetJobStatsRequest, context: Context) -> jobs_pb2.GetJobStatsResponse:
        await self._accept(request, context)
        counts = jobs_pb2.JobStateCounts(completed=1, running=1, failed=1)
        return jobs_pb2.GetJobStatsResponse(stats=jobs_pb2.JobStats(total_jobs=3, counts=counts, finished_jobs=2))

    async def QuoteJob(self, request: jobs_pb2.QuoteJobRequest, context: Context) -> jobs_pb2.QuoteJobResponse:
        """Not called by the SDK; the gateway's seed-004 route is tested against the real coordinator."""
        await self._accept(request, context)
        return jobs_pb2.QuoteJobResponse(model=request.model, miner_id="m1", miner_reputation=5000)

    async def _accept(self, request: Message, context: Context) -> None:
        metadata = dict(context.invocation_metadata() or ())
        if metadata.get("x-api-key") != API_KEY:
            await self._abort(context, rich_status(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "bad API key"))
        self.requests.append(request)
        failures = self.failures.get(request.DESCRIPTOR.name.removesuffix("Request"), [])
        if failures:
            await self._abort(context, failures.pop(0))

    async def _find(self, job_id: str, context: Context) -> jobs_pb2.Job:
        if job_id == "job_plain_error":
            # An error without a rich status, as a proxy or a crashed handler would send.
            await context.abort(grpc.StatusCode.INTERNAL, "boom")
        if job_id not in self.jobs:
            await self._abort(
                context, rich_status(grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", f"job {job_id} not found", "job_id")
            )
        return self.jobs[job_id]

    @staticmethod
    async def _abort(context: Context, status: grpc.Status) -> None:
        await context.abort(status.code, status.details, status.trailing_metadata)


async def start_server(service: FakeJobService) -> tuple[grpc.aio.Server, str]:
    """Serve `service` on 127.0.0.1 at a free port, in the running loop; returns the server and its address."""
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


class BackgroundServer:
    """`start_server` on an event loop in its own thread, for blocking clients."""

    def __init__(self, service: FakeJobService) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-coordinator", daemon=True)
        self._thread.start()
        self._server, self.address = asyncio.run_coroutine_threadsafe(start_server(service), self._loop).result()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the server's loop (another server beside it, say) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(None), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def free_address() -> str:
    """An address nothing listens on: the port was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"
